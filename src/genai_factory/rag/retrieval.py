"""Hybrid retrieval: dense vectors and BM25 side by side, fused, then an optional reranking stage.

One query runs as::

    embed query ─┬─ vector store: top-N chunks by cosine ──┐
                 └─ keyword index: top-N chunks by BM25 ────┴─ union → fill in the missing score
       (cosine from the stored vector, BM25 for that chunk) → fuse → rerank the top M → top k

Fusion is ``zscore`` (default) or ``rrf``. ``zscore`` standardises each retriever's scores by the
mean and standard deviation of its own top-N list and adds them with the configured weights; ``rrf``
is weighted reciprocal rank fusion. Both were measured on SciFact (``bench/retrieval_scifact.py``):
z-score fusion of the exact scores beat RRF there, because it keeps how far ahead a top hit is.

Every returned hit's ``score`` is its cosine similarity to the query (see :class:`ScoredChunk`);
``scores`` holds ``dense``, ``keyword``, ``fused`` and, after reranking, ``rerank``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.fusion import reciprocal_rank_fusion
from genai_factory.rag.keyword import DEFAULT_WEIGHTS, KeywordIndex
from genai_factory.rag.stores.protocol import VectorStore, Where, matches

RetrievalMode = Literal["hybrid", "dense", "keyword"]
#: A retriever's hits as (document id, score), best first.
Ranking = list[tuple[str, float]]
FusionMethod = Literal["zscore", "rrf"]


@dataclass(frozen=True)
class RetrievalOptions:
    """How a query is answered. Built from ``rag.retrieval`` settings; defaults are the measured best.

    Args:
        mode: ``hybrid`` (both retrievers), ``dense`` or ``keyword`` only.
        fusion: ``zscore`` or ``rrf``.
        dense_weight, keyword_weight: the weight of each retriever in the fusion.
        rrf_k: the RRF constant.
        candidates: chunks fetched from each retriever (at least; more when many are asked for).
        keyword_weights: BM25 weights of the title, heading, body and context fields.
        rerank_depth: fused candidates passed to the reranker, when one is configured.
    """

    mode: RetrievalMode = "hybrid"
    fusion: FusionMethod = "zscore"
    dense_weight: float = 0.5
    keyword_weight: float = 0.6
    rrf_k: int = 60
    candidates: int = 100
    keyword_weights: tuple[float, float, float, float] = DEFAULT_WEIGHTS
    rerank_depth: int = 100


@dataclass
class Candidate:
    """A chunk under consideration, with what each stage said about it."""

    chunk: Chunk
    dense: float
    keyword: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    #: Every chunk the candidate stands for (its document's, in per-document search).
    members: list[Chunk] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [c.text for c in self.members] if self.members else [self.chunk.text]

    @property
    def id(self) -> str:
        return self.chunk.id


class Reranker(Protocol):
    """Reorders the best fused candidates. Returns one score per candidate, higher is better."""

    name: str

    async def rerank(
        self, query: str, query_vector: NDArray[np.float32], candidates: Sequence[Candidate]
    ) -> list[float]: ...


def zscores(values: Sequence[float], reference: Sequence[float]) -> NDArray[np.float64]:
    """``values`` standardised by the mean and standard deviation of ``reference``."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.size == 0:
        return np.zeros(len(values))
    spread = float(ref.std()) or 1.0
    return (np.asarray(values, dtype=np.float64) - float(ref.mean())) / spread


class HybridRetriever:
    """Answers queries from one index version's vector store and keyword index."""

    def __init__(
        self,
        store: VectorStore,
        keyword: KeywordIndex,
        embedder: Embedder,
        *,
        options: RetrievalOptions | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.store = store
        self.keyword = keyword
        self.embedder = embedder
        self.options = options or RetrievalOptions()
        self.reranker = reranker

    async def search(
        self,
        query: str,
        k: int,
        *,
        where: Where | None = None,
        per_document: bool = False,
        known: Mapping[str, int] | None = None,
    ) -> list[ScoredChunk]:
        """The ``k`` best chunks (or, with ``per_document``, the best chunk of the ``k`` best
        documents).

        ``known`` maps each indexed document to its chunk count: chunks of other documents are
        ignored (orphans of an interrupted write), and with ``per_document`` every chunk of a
        candidate document is scored, so a document counts with its best evidence even when only
        one of its chunks was among either retriever's candidates.
        """
        if not query.strip() or k < 1:
            return []
        vector = np.asarray((await self.embedder.embed([query]))[0], dtype=np.float32)
        depth = max(self.options.candidates, k * 3 if per_document else k)
        candidates, dense_ref, keyword_ref = await self._candidates(query, vector, depth, where)
        if known is not None:
            candidates = [c for c in candidates if c.chunk.document_id in known]
        if per_document:
            if known is not None:
                candidates += await self._siblings(query, vector, candidates, known)
            candidates = _per_document(candidates)
            dense_ref, keyword_ref = (
                _first_per_document(dense_ref),
                _first_per_document(keyword_ref),
            )
        ranked = self._fuse(candidates, [s for _, s in dense_ref], [s for _, s in keyword_ref])
        ranked = await self._rerank(query, vector, ranked)
        return [
            ScoredChunk(chunk=c.chunk, score=c.dense, scores=_rounded(c.scores)) for c in ranked[:k]
        ]

    async def _candidates(
        self, query: str, vector: NDArray[np.float32], depth: int, where: Where | None
    ) -> tuple[list[Candidate], Ranking, Ranking]:
        mode = self.options.mode
        dense_hits = await self.store.search(vector, depth, where) if mode != "keyword" else []
        keyword_hits = await self.keyword.search(query, depth) if mode != "dense" else []
        found = {h.chunk.id: Candidate(h.chunk, dense=h.score) for h in dense_hits}
        missing = [h.chunk_id for h in keyword_hits if h.chunk_id not in found]
        chunks, vectors = await self.store.fetch(missing)
        for chunk, row in zip(chunks, vectors, strict=True):
            if matches(chunk, where):
                found[chunk.id] = Candidate(chunk, dense=float(row @ vector))
        keyword_scores = {h.chunk_id: h.score for h in keyword_hits}
        if mode != "dense":
            unscored = [i for i in found if i not in keyword_scores]
            keyword_scores.update(await _bm25_for(self.keyword, query, unscored))
        for candidate in found.values():
            candidate.keyword = keyword_scores.get(candidate.id, 0.0)
        dense_ref = [(h.chunk.document_id, h.score) for h in dense_hits]
        keyword_ref = [(h.document_id, h.score) for h in keyword_hits]
        return list(found.values()), dense_ref, keyword_ref

    async def _siblings(
        self,
        query: str,
        vector: NDArray[np.float32],
        candidates: list[Candidate],
        known: Mapping[str, int],
    ) -> list[Candidate]:
        """The chunks of the candidates' documents that are not candidates yet, scored."""
        have = {c.id for c in candidates}
        documents = {c.chunk.document_id for c in candidates}
        wanted = [
            chunk_id
            for document_id in documents
            for chunk_id in (f"{document_id}:{i}" for i in range(known.get(document_id, 0)))
            if chunk_id not in have
        ]
        chunks, vectors = await self.store.fetch(wanted)
        found = [
            Candidate(c, dense=float(v @ vector)) for c, v in zip(chunks, vectors, strict=True)
        ]
        if self.options.mode != "dense":
            scores = await _bm25_for(self.keyword, query, [c.id for c in found])
            for candidate in found:
                candidate.keyword = scores.get(candidate.id, 0.0)
        return found

    def _fuse(
        self, candidates: list[Candidate], dense_ref: list[float], keyword_ref: list[float]
    ) -> list[Candidate]:
        options = self.options
        for c in candidates:
            c.scores["dense"] = c.dense
            c.scores["keyword"] = c.keyword or 0.0
        if options.mode != "hybrid":
            key = "dense" if options.mode == "dense" else "keyword"
            for c in candidates:
                c.scores["fused"] = c.scores[key]
        elif options.fusion == "rrf":
            _fuse_rrf(candidates, options)
        else:
            dense_z = zscores([c.dense for c in candidates], dense_ref)
            keyword_z = zscores([c.keyword or 0.0 for c in candidates], keyword_ref)
            for c, dz, kz in zip(candidates, dense_z, keyword_z, strict=True):
                c.scores["fused"] = options.dense_weight * dz + options.keyword_weight * kz
        return sorted(candidates, key=lambda c: -c.scores["fused"])

    async def _rerank(
        self, query: str, vector: NDArray[np.float32], ranked: list[Candidate]
    ) -> list[Candidate]:
        if self.reranker is None or not ranked:
            return ranked
        head = ranked[: self.options.rerank_depth]
        scores = await self.reranker.rerank(query, vector, head)
        for candidate, score in zip(head, scores, strict=True):
            candidate.scores["rerank"] = score
        head = sorted(head, key=lambda c: -c.scores["rerank"])
        return head + ranked[len(head) :]


async def _bm25_for(keyword: KeywordIndex, query: str, chunk_ids: list[str]) -> dict[str, float]:
    import asyncio

    if not chunk_ids:
        return {}
    return await asyncio.to_thread(keyword.scores_blocking, query, chunk_ids)


def _fuse_rrf(candidates: list[Candidate], options: RetrievalOptions) -> None:
    by_dense = sorted(candidates, key=lambda c: -c.dense)
    by_keyword = sorted((c for c in candidates if c.keyword), key=lambda c: -(c.keyword or 0.0))
    fused = dict(
        reciprocal_rank_fusion(
            {"dense": [c.id for c in by_dense], "keyword": [c.id for c in by_keyword]},
            {"dense": options.dense_weight, "keyword": options.keyword_weight},
            k=options.rrf_k,
        )
    )
    for c in candidates:
        c.scores["fused"] = fused.get(c.id, 0.0)


def _per_document(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per document: its best chunk by cosine, scored with the document's best
    cosine and best BM25 (a document is as relevant as its best evidence from each retriever)."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        current = best.get(c.chunk.document_id)
        if current is None:
            best[c.chunk.document_id] = Candidate(
                c.chunk, dense=c.dense, keyword=c.keyword, members=[c.chunk]
            )
            continue
        current.members.append(c.chunk)
        if c.dense > current.dense:
            current.chunk, current.dense = c.chunk, c.dense
        current.keyword = max(current.keyword or 0.0, c.keyword or 0.0)
    return list(best.values())


def _first_per_document(ranking: Ranking) -> Ranking:
    """A retriever's chunk ranking reduced to documents (each at its best chunk's score)."""
    seen: set[str] = set()
    kept = []
    for document_id, score in ranking:
        if document_id not in seen:
            seen.add(document_id)
            kept.append((document_id, score))
    return kept


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in scores.items()}
