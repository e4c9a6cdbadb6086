"""The output PII guard on technical sources: each rule that keeps a capitalised word of the
source from counting as a person's name, the phone and secret shapes that prose takes, and the
whole user guide (``bench/pii_guide.py``) as a regression figure.

Each sentence is filtered the way the RAG route's answer is when it quotes its source: the
sentence is both the answer and the only source.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.pii import (
    OutputPolicy,
    PIIDetector,
    acronym,
    code_identifiers,
    ordinary_word,
)
from genai_factory.safety.pii_patterns import find_structured

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pii_guide.py"
#: False positives left on the user guide (see docs/safety.md): lone product names in running
#: text with nothing in their own chunk to say what they are (``Loki and Promtail``,
#: ``Docker and Prometheus``, ``German Spider questions``), a German word in quotes, a label
#: opening a line (``Objectives:``) whose root word is not in the ordinary vocabulary.
GUIDE_FALSE_POSITIVES = 6


@pytest.fixture(scope="module")
def detector(resources: GuardResources) -> PIIDetector:
    return PIIDetector(resources.names)


def redacted(detector: PIIDetector, sentence: str) -> list[tuple[str, str]]:
    policy = OutputPolicy(detector)
    kept = policy.filter(sentence, detector.find(sentence), [sentence])
    return [(f.kind, sentence[f.start : f.end]) for f in kept]


def test_acronyms_and_product_spellings_are_not_names() -> None:
    for word in ("MLP", "OIDC", "AVX", "RDS", "ReLU", "LiteLLM", "PneumoniaMNIST"):
        assert acronym(word), word
    for word in ("Grace", "McDonald", "LeBlanc", "O'Brien", "A"):
        assert not acronym(word), word


def test_ordinary_words_with_a_prefix_or_an_inflection() -> None:
    common = frozenset({"set", "objective", "bank"})
    assert ordinary_word("unset", common)
    assert ordinary_word("objectives", common)
    assert ordinary_word("banks", common)
    assert not ordinary_word("unger", common)  # stem not ordinary
    assert not ordinary_word("res", frozenset({"s"}))  # stem too short


def test_code_identifiers_leave_out_quoted_values() -> None:
    source = 'Add `"mine": Lazy("my_package.my_model:MyModel")` or `name = \'Grace Hopper\'`.'
    words = code_identifiers(source)
    assert "lazy" in words
    assert "grace" not in words and "hopper" not in words and "mine" not in words


@pytest.mark.parametrize(
    "sentence",
    [
        # a product's spelling
        "Three stages of convolutions with batch norm and ReLU.",
        # ordinary vocabulary behind a possessive or a prefix
        "Python's reference documentation did not help.",
        "Unset, the service takes the value stored beside it.",
        # an identifier in code
        'Register it as `"mine": Lazy("my_package.my_model:MyModel")` in the table.',
        # an ordinary word opening a sentence
        "Short of the targets: recall 0.92 on the held-out split.",
        # a possessive word no name list knows
        "Youden's index peaks at a very low threshold.",
    ],
)
def test_technical_sentences_quoting_their_source_are_left_alone(
    detector: PIIDetector, sentence: str
) -> None:
    assert detector.find(sentence), "the detector alone reads a name here"
    assert redacted(detector, sentence) == []


@pytest.mark.parametrize(
    "sentence",
    [
        "The wheel is built for AVX2 and the adapter trains the MLP layers.",
        "AWS access is by OIDC, never by stored keys.",
        "What runs as PID 1 in the container?",
    ],
)
def test_abbreviations_are_no_names_even_to_the_detector(
    detector: PIIDetector, sentence: str
) -> None:
    # the input guard and the logs read them as the user wrote them, too
    assert detector.find(sentence) == []
    assert redacted(detector, sentence) == []


@pytest.mark.parametrize(
    ("sentence", "name"),
    [
        ("For my take on Mrs. Faubert, see the review.", "Faubert"),
        ("Mohmad R. Vizirov will be talking at the conference.", "Vizirov"),
        ("Margaret Okafor's order was shipped to her on Monday.", "Okafor"),
        ("Irenka is very reliable.", "Irenka"),
        ("The query `WHERE name = 'Grace Hopper'` returns her orders.", "Grace"),
        ("Shelby Banks called yesterday. Banks said the parcel is late.", "Banks"),
        ("The passenger JOHN SMITH boarded late.", "SMITH"),
    ],
)
def test_names_held_by_the_source_are_still_redacted(
    detector: PIIDetector, sentence: str, name: str
) -> None:
    assert any(name in value for kind, value in redacted(detector, sentence) if kind == "PERSON")


def test_recall_in_a_table_of_figures_is_not_a_phone_number() -> None:
    text = "the default row gave Recall@10 0.866, Recall@100 0.956, MRR@10 0.722"
    assert find_structured(text) == []
    # figures, even after a phone word: a number, a space and a one-digit decimal fraction
    assert find_structured("call it a score of 100 0.956 at most") == []
    for phone in (
        "Please call 450 0840 after six.",
        "Call me on +44 20 7946 0958.",
        "Call 1.800.555.1234 today.",
    ):
        assert [f.kind for f in find_structured(phone)] == ["PHONE_NUMBER"], phone


def test_placeholders_and_prose_after_token_are_not_secrets() -> None:
    for text in (
        "sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        "It does not match token for token: llama.cpp's kernels differ.",
    ):
        assert find_structured(text) == [], text
    for text, value in (
        ("token: ghs1234abcdEF", "ghs1234abcdEF"),
        ("api_key=s3cr3tvalue", "s3cr3tvalue"),
        ("password: sunshine", "sunshine"),
    ):
        found = find_structured(text)
        assert [(f.kind, text[f.start : f.end]) for f in found] == [("SECRET", value)], text


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pii_guide", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_the_user_guide_quoted_as_answers(resources: GuardResources) -> None:
    bench = _bench()
    pairs = list(bench.guide_sentences())
    assert len(pairs) > 1000
    changed = bench.changed_sentences(resources.names, pairs)
    wrong = [(c.redacted, c.sentence[:80]) for c in changed if c.false_positive]
    assert len(wrong) <= GUIDE_FALSE_POSITIVES, wrong
    # the guide's own examples of personal data (the demo shop's customers) are still redacted
    assert any(not c.false_positive for c in changed)
