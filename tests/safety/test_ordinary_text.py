"""Ordinary questions pass the PII guard untouched: product names, components, counts and versions
are not people or places.

Regression: the tagger once redacted "gateway" and "8" as LOCATION in an ordinary question. Some
component words here are in the tagger's technical training sentences (``Gateway``, ``Docker``,
``Redis``); the others (``Traefik``, ``Consul``, ``Nomad``, ``Uvicorn``, ``Pydantic`` ...) are not, so
these tests also check that the tagger generalises beyond its training lists.
"""

from __future__ import annotations

import pytest

from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.guard import GuardContext
from genai_factory.safety.pii import PIIDetector, PIIGuard

TECHNICAL_QUESTIONS = (
    "How do I configure the gateway to allow 8 requests per second?",
    "Can I run the Gateway behind Traefik on a Nomad cluster?",
    "Why does the health check return 503 for 30 seconds after a restart?",
    "Set the worker count to 4 and the timeout to 120 in uvicorn.",
    "What does the retry wrapper do after 3 failed calls?",
    "How many tokens fit in the context window of SmolLM2?",
    "Is MLflow used for the registry and the champion alias?",
    "Does the Qdrant store support payload filters in version 1.12?",
    "Explain how the Circuit Breaker decides to open after 5 errors.",
    "Which Pydantic settings control the budget per key?",
    "Our Consul agent lists 12 services but only 9 are healthy.",
    "Upgrade PostgreSQL from 15 to 16 before Friday.",
    "The build took 7 minutes on 2 cores; how do I make it faster?",
    "Answer: use the sliding-window limiter with 60 requests per minute.",
    "Supposed to be fast, but the index rebuild takes 45 seconds.",
    # abbreviations and product spellings are not names or places
    "What runs as PID 1 in the container?",
    "What is the RRF constant?",
    "Does the MLP use ReLU or GELU?",
)


@pytest.mark.parametrize("question", TECHNICAL_QUESTIONS)
def test_technical_questions_pass_untouched(resources: GuardResources, question: str) -> None:
    guard = PIIGuard(PIIDetector(resources.names))
    verdict = guard.check(question, GuardContext())
    found = [(f.kind, question[f.start : f.end]) for f in verdict.findings]
    assert verdict.action == "allow", found
    assert found == []


#: Known limit, kept visible: an unknown capitalised word where a name or a town would stand
#: ("in Uvicorn", "Upgrade Postgres") still reads as one. Strict: a fix makes these pass.
AMBIGUOUS = (
    "Set the worker count to 4 and the timeout to 120 in Uvicorn.",
    "Upgrade Postgres from 15 to 16 before Friday.",
)


@pytest.mark.xfail(strict=True, reason="unknown capitalised words in a name or place position")
@pytest.mark.parametrize("question", AMBIGUOUS)
def test_unknown_product_names_in_place_positions(resources: GuardResources, question: str) -> None:
    assert PIIDetector(resources.names).find(question) == []


def test_names_and_places_are_still_found_beside_technical_words(
    resources: GuardResources,
) -> None:
    text = "Maria Kowalski from Warsaw asked why the Gateway returns 8 errors."
    found = [(f.kind, text[f.start : f.end]) for f in PIIDetector(resources.names).find(text)]
    assert ("PERSON", "Maria Kowalski") in found
    assert ("LOCATION", "Warsaw") in found
    assert all(value not in ("Gateway", "8") for _, value in found)


def test_a_house_number_stays_part_of_its_address(resources: GuardResources) -> None:
    text = "Please ship it to 221 Baker Street, London."
    found = [(f.kind, text[f.start : f.end]) for f in PIIDetector(resources.names).find(text)]
    assert any(kind == "LOCATION" and "221" in value for kind, value in found), found


def test_placeholders_are_never_redacted_again(resources: GuardResources) -> None:
    text = "I will ring <PHONE_NUMBER_1> and write to <PERSON_2> at <EMAIL_ADDRESS>."
    assert PIIDetector(resources.names).find(text) == []
