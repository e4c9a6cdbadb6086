from __future__ import annotations

import math

import pytest

from genai_factory.rag.fusion import reciprocal_rank_fusion
from genai_factory.rag.metrics import evaluate_run, ndcg_at
from genai_factory.rag.retrieval import zscores

QRELS = {
    "q1": {"d1": 1, "d3": 2},
    "q2": {"d2": 1},
    "q3": {"d9": 1},
    "q4": {"d4": 0},  # no relevant document: not counted
    "q5": {"d11": 1},
}
RUN = {
    "q1": ["d3", "d2", "d1"],
    "q2": ["d1", "d2"],
    "q3": ["d1"],
    "q4": ["d4"],
    "q5": [f"x{i}" for i in range(10)] + ["d11"],
}


def test_metrics_match_hand_computed_values() -> None:
    q1 = (2 / math.log2(2) + 1 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    q2 = (1 / math.log2(3)) / 1
    metrics = evaluate_run(RUN, QRELS)
    assert list(metrics) == ["nDCG@10", "Recall@10", "Recall@100", "MRR@10"]
    assert metrics["nDCG@10"] == pytest.approx((q1 + q2 + 0 + 0) / 4)
    assert metrics["nDCG@10"] == pytest.approx(0.39529, abs=1e-5)
    assert metrics["Recall@10"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert metrics["Recall@100"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert metrics["MRR@10"] == pytest.approx((1 + 1 / 2 + 0 + 0) / 4)


def test_unanswered_queries_score_zero_and_grades_are_gains() -> None:
    assert evaluate_run({}, {"q": {"d": 1}}) == dict.fromkeys(
        ["nDCG@10", "Recall@10", "Recall@100", "MRR@10"], 0.0
    )
    # a grade-2 document first and a grade-1 second is the ideal order; swapped is not
    assert ndcg_at(["a", "b"], {"a": 2, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at(["b", "a"], {"a": 2, "b": 1}, 10) < 1.0


def test_weighted_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion(
        {"dense": ["a", "b", "c"], "keyword": ["c", "a"]}, {"dense": 1.0, "keyword": 2.0}, k=60
    )
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 2 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 2 / 61)
    assert [item for item, _ in fused] == ["c", "a", "b"]
    only_dense = reciprocal_rank_fusion({"dense": ["a", "b"], "keyword": ["b"]}, {"keyword": 0})
    assert [item for item, _ in only_dense] == ["a", "b"]


def test_zscores_use_the_reference_list() -> None:
    assert list(zscores([3.0, 1.0, 5.0], [1.0, 3.0, 5.0])) == pytest.approx(
        [0.0, -math.sqrt(1.5), math.sqrt(1.5)]
    )
    assert list(zscores([2.0], [])) == [0.0]
    assert list(zscores([2.0, 4.0], [3.0])) == [-1.0, 1.0]
