"""The PII guard on answers: this request's personal data is redacted, ordinary answers are not.

``data/technical_answers.txt`` holds 100+ ordinary answers (the user guide's facts, headings,
product names, loopback and documentation addresses, general knowledge); before the output policy
the guard changed 26 of its 124 lines ("The capital of France is <PERSON>"), now none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.config import bundled_docs_dir
from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.guard import GuardContext
from genai_factory.safety.pii import PIIDetector, PIIGuard

DATA = Path(__file__).parent / "data"


def technical_answers() -> list[str]:
    lines = (DATA / "technical_answers.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def guard(resources: GuardResources) -> PIIGuard:
    return PIIGuard(PIIDetector(resources.names))


@pytest.fixture(scope="module")
def guide() -> tuple[str, ...]:
    from genai_factory.rag.loaders import load_path
    from genai_factory.rag.splitting import split_document

    return tuple(c.text for d in load_path(bundled_docs_dir()) for c in split_document(d))


def answer(guard: PIIGuard, text: str, sources: tuple[str, ...] = ()) -> str:
    verdict = guard.check(text, GuardContext(surface="output", route="rag", sources=sources))
    return text if verdict.text is None else verdict.text


def test_ordinary_answers_are_left_alone(guard: PIIGuard, guide: tuple[str, ...]) -> None:
    answers = technical_answers()
    assert len(answers) >= 100
    changed = [a for a in answers if answer(guard, a) != a]
    assert changed == []
    # with the whole user guide retrieved as sources, still nothing
    assert [a for a in answers if answer(guard, a, guide) != a] == []


def test_answers_the_detector_alone_damaged(guard: PIIGuard) -> None:
    for text in (
        "The capital of France is Paris.",
        "The MLOps cycle > Drift monitoring",
        "The service listens on port 127.0.0.1:8000.",
        "Open http://localhost:8000/docs in a browser.",
    ):
        assert answer(guard, text) == text


def test_personal_data_from_the_sources_is_redacted(guard: PIIGuard) -> None:
    source = (
        "Customer record: Margaret Okafor, margaret.okafor@example.org, phone +44 20 7946 0958, "
        "lives at 221 Baker Street, London."
    )
    reply = (
        "Margaret Okafor can be reached at margaret.okafor@example.org or +44 20 7946 0958; "
        "she lives at 221 Baker Street in London [1]."
    )
    redacted = answer(guard, reply, (source,))
    for value in ("Okafor", "margaret.okafor@", "7946", "221 Baker"):
        assert value not in redacted, redacted
    assert "London" in redacted  # a city is not personal data on its own


def test_structured_values_are_redacted_without_sources(guard: PIIGuard) -> None:
    reply = "Pay with card 4111 1111 1111 1111 or IBAN DE89 3704 0044 0532 0130 00 [1]."
    redacted = answer(guard, reply)
    assert "4111" not in redacted and "DE89" not in redacted
    assert "<CREDIT_CARD>" in redacted and "<IBAN_CODE>" in redacted


def test_public_addresses_are_personal_loopback_and_examples_are_not(guard: PIIGuard) -> None:
    assert answer(guard, "The client connected from 8.8.4.4 at noon.") != (
        "The client connected from 8.8.4.4 at noon."
    )
    for text in ("Bind to 0.0.0.0 or ::1.", "Use 192.0.2.10 or 10.0.0.5 in examples."):
        assert answer(guard, text) == text


def test_the_input_keeps_full_recall(guard: PIIGuard) -> None:
    verdict = guard.check("My name is Margaret Okafor and I live in Paris.", GuardContext())
    assert verdict.text is not None and "Okafor" not in verdict.text
