"""Fusing rankings from several retrievers (pure functions, no I/O).

``reciprocal_rank_fusion`` is weighted RRF (Cormack et al., 2009): an item at 1-based rank ``r`` in
ranking ``name`` earns ``weights[name] / (k + r)``; an item missing from a ranking earns nothing
there. It needs no score calibration, which is why it is the default way to merge BM25 and cosine
rankings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The usual RRF constant: it damps the advantage of the very top ranks.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
    *,
    k: int = RRF_K,
) -> list[tuple[str, float]]:
    """Items of all rankings with their fused scores, best first (ties keep first-seen order)."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        if weight == 0:
            continue
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
