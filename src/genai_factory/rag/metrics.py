"""Ranking metrics for retrieval evaluation, as BEIR computes them (pure functions, no I/O).

``qrels`` map a query id to ``{document id: graded relevance}``; ``run`` maps a query id to its
ranked document ids, best first. Conventions (those of ``pytrec_eval``, which BEIR uses):

* nDCG@k uses the grade itself as the gain, ``rel / log2(rank + 1)``, divided by the DCG of the ideal
  ordering of that query's judged documents.
* A document is relevant when its grade is above 0 (Recall@k and MRR@k).
* Every query in ``qrels`` with at least one relevant document counts; a query the run does not
  answer scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: The metrics ``genai-factory eval retrieval`` reports, under these names.
METRICS = ("nDCG@10", "Recall@10", "Recall@100", "MRR@10")
Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def dcg(gains: Sequence[float]) -> float:
    return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([max(judged.get(doc, 0), 0) for doc in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100 and MRR@10, averaged over the judged queries."""
    judged = {q: rels for q, rels in qrels.items() if any(g > 0 for g in rels.values())}
    totals = dict.fromkeys(METRICS, 0.0)
    for query_id, rels in judged.items():
        ranked = list(run.get(query_id, ()))
        totals["nDCG@10"] += ndcg_at(ranked, rels, 10)
        totals["Recall@10"] += recall_at(ranked, rels, 10)
        totals["Recall@100"] += recall_at(ranked, rels, 100)
        totals["MRR@10"] += reciprocal_rank_at(ranked, rels, 10)
    count = max(len(judged), 1)
    return {name: value / count for name, value in totals.items()}
