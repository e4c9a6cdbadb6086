"""The promotion gates of the example suite refuse a fine-tune that learnt to abstain."""

from __future__ import annotations

from pathlib import Path

from genai_factory.mlops.gates import check_gates
from genai_factory.mlops.suite import load_suite

EXAMPLE = Path(__file__).parents[2] / "examples" / "eval_suite.yaml"

# ``eval qa --with-context`` figures shaped like the first fine-tuning run: overall F1 up because
# the model abstains on most questions, F1 on the answerable ones down.
CHAMPION = {
    "qa.f1": 0.106,
    "qa.has_answer_f1": 0.217,
    "qa.abstention_accuracy": 0.04,
    "qa.hallucination_rate": 0.077,
    "latency.p95_ms": 3649.0,
    "safety.injection.recall": 0.9,
}


def _qa_failures(challenger: dict[str, float]) -> list[str]:
    gates = load_suite(EXAMPLE).gates
    results = check_gates(gates, challenger, CHAMPION)
    return [r.metric for r in results if r.failed]


def test_example_suite_gates_both_overall_and_answerable_f1() -> None:
    regression_gates = {g.metric for g in load_suite(EXAMPLE).gates if g.max_regression is not None}
    assert {"qa.f1", "qa.has_answer_f1"} <= regression_gates


def test_over_abstaining_challenger_is_refused() -> None:
    abstaining = {**CHAMPION, "qa.f1": 0.595, "qa.has_answer_f1": 0.186}
    abstaining["qa.abstention_accuracy"] = 0.84
    assert _qa_failures(abstaining) == ["qa.has_answer_f1"]


def test_challenger_better_on_both_passes() -> None:
    better = {**CHAMPION, "qa.f1": 0.45, "qa.has_answer_f1": 0.23, "qa.abstention_accuracy": 0.6}
    assert _qa_failures(better) == []
    # a small dip within the margin is tolerated, one beyond it is not
    assert _qa_failures({**better, "qa.has_answer_f1": 0.2}) == []
    assert _qa_failures({**better, "qa.has_answer_f1": 0.19}) == ["qa.has_answer_f1"]
