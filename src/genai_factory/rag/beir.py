"""Retrieval evaluation on BEIR-format data, through exactly the product's ingest and search path.

BEIR files: ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line), ``queries.jsonl``
(``{"_id", "text"}``) and ``qrels.tsv`` (``query-id  corpus-id  score``, an optional header line).
:func:`evaluate_beir` ingests the corpus into a fresh :class:`KnowledgeIndex` in a temporary
directory — the configured embedder (its vectors cached by content hash, so a second run embeds
nothing), the embedded vector store, the BM25 index, the configured fusion and reranker — then asks
every judged query for its 100 best documents and scores the ranking (:mod:`.metrics`).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.messages import Document
from genai_factory.rag.catalog import DocumentCatalog
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.index import KnowledgeIndex, Progress
from genai_factory.rag.keyword import KeywordIndex
from genai_factory.rag.loaders import content_hash
from genai_factory.rag.metrics import Qrels, evaluate_run
from genai_factory.rag.retrieval import Reranker, RetrievalOptions
from genai_factory.rag.stores.embedded import EmbeddedVectorStore

#: Documents each query ranks (Recall@100 needs 100).
RUN_DEPTH = 100


@dataclass
class RetrievalEvaluation:
    """The metrics of one evaluation and what it took."""

    metrics: dict[str, float]
    queries: int
    documents: int
    chunks: int
    ingest_s: float
    search_s: float
    run: dict[str, list[str]] = field(default_factory=dict, repr=False)


def _json_lines(path: Path) -> Iterator[dict[str, object]]:
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidRequestError(f"{path}:{number} is not JSON: {exc}") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise InvalidRequestError(f"{path}:{number} has no _id")
            yield row


def load_corpus(path: Path) -> list[Document]:
    """BEIR corpus rows as documents (id = ``_id``; the title is kept apart from the text)."""
    documents = []
    for row in _json_lines(path):
        doc_id, title, text = str(row["_id"]), str(row.get("title") or ""), str(row.get("text", ""))
        if not text.strip() and not title.strip():
            continue
        documents.append(
            Document(
                id=doc_id,
                text=text if text.strip() else title,
                title=title,
                source=doc_id,
                content_hash=content_hash(f"{title}\n{text}"),
            )
        )
    return documents


def load_queries(path: Path) -> dict[str, str]:
    return {str(row["_id"]): str(row.get("text", "")) for row in _json_lines(path)}


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query id → {document id: grade}`` from a TSV (a first line that is a header is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.strip().split("\t") if "\t" in line else line.split()
        if not fields or not line.strip():
            continue
        try:
            grade = int(float(fields[-1]))
        except ValueError:
            if number == 1:
                continue  # the header: query-id corpus-id score
            raise InvalidRequestError(f"{path}:{number}: the score is not a number") from None
        if len(fields) < 3:
            raise InvalidRequestError(f"{path}:{number}: expected query-id, corpus-id, score")
        qrels.setdefault(fields[0], {})[fields[-2]] = grade
    return qrels


async def evaluate_beir(
    corpus: Path,
    queries: Path,
    qrels: Path,
    *,
    embedder: Embedder,
    options: RetrievalOptions,
    reranker: Reranker | None = None,
    chunk_tokens: int = 160,
    overlap_tokens: int = 32,
    batch_size: int = 64,
    progress: Callable[[str], Progress] | None = None,
) -> RetrievalEvaluation:
    """Ingest ``corpus`` into a temporary index and score the judged ``queries`` against ``qrels``.

    ``progress(stage)`` gives a progress callback per stage (``"ingest"``, ``"search"``).
    """
    judgments = load_qrels(qrels)
    texts = load_queries(queries)
    judged = {q: t for q, t in texts.items() if q in judgments and t.strip()}
    if not judged:
        raise InvalidRequestError("no query in the queries file has a relevance judgment")
    documents = load_corpus(corpus)
    with tempfile.TemporaryDirectory(prefix="genai-eval-") as work:
        index = KnowledgeIndex(
            EmbeddedVectorStore(Path(work) / "vectors", embedder=embedder.name),
            embedder,
            keyword=KeywordIndex(Path(work) / "keyword.sqlite", weights=options.keyword_weights),
            catalog=DocumentCatalog(Path(work) / "catalog.sqlite"),
            options=options,
            reranker=reranker,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            batch_size=batch_size,
        )
        try:
            started = time.perf_counter()
            await index.ingest_documents(documents, progress=progress and progress("ingest"))
            ingest_s = time.perf_counter() - started
            run = await _search_all(index, judged, progress and progress("search"))
            search_s = time.perf_counter() - started - ingest_s
            chunks = await index.count()
        finally:
            await index.aclose()
    return RetrievalEvaluation(
        metrics=evaluate_run(run, _restricted(judgments, judged)),
        queries=len(judged),
        documents=len(documents),
        chunks=chunks,
        ingest_s=ingest_s,
        search_s=search_s,
        run=run,
    )


async def _search_all(
    index: KnowledgeIndex, queries: dict[str, str], progress: Progress | None
) -> dict[str, list[str]]:
    run: dict[str, list[str]] = {}
    for done, (query_id, text) in enumerate(queries.items(), start=1):
        hits = await index.search_documents(text, RUN_DEPTH)
        run[query_id] = [hit.chunk.document_id for hit in hits if hit.chunk.document_id != query_id]
        if progress is not None:
            progress(done, len(queries))
    return run


def _restricted(qrels: Qrels, queries: dict[str, str]) -> Qrels:
    return {q: rels for q, rels in qrels.items() if q in queries}


async def run_retrieval_eval(
    settings: Settings,
    corpus: Path,
    queries: Path,
    qrels: Path,
    *,
    embedder: Embedder | None = None,
    progress: Callable[[str], Progress] | None = None,
) -> RetrievalEvaluation:
    """:func:`evaluate_beir` with the stack ``settings`` name: what ``eval retrieval`` runs.

    The configured embedder is wrapped in the on-disk vector cache (``<data_dir>/cache``) unless
    ``embeddings.cache`` is off; a given ``embedder`` is used as it is.
    """
    from genai_factory.rag.embedding import get_embedder
    from genai_factory.rag.embedding_cache import CachedEmbedder
    from genai_factory.rag.rerank import get_reranker
    from genai_factory.rag.serving import retrieval_options

    chosen = embedder
    if chosen is None:
        chosen = get_embedder(settings.embeddings)
        if settings.embeddings.cache:
            chosen = CachedEmbedder(chosen, settings.cache_dir())
    retrieval = settings.rag.retrieval
    try:
        return await evaluate_beir(
            corpus,
            queries,
            qrels,
            embedder=chosen,
            options=retrieval_options(settings),
            reranker=get_reranker(retrieval.reranker, chosen, weight=retrieval.rerank_weight),
            chunk_tokens=settings.rag.chunk_tokens,
            overlap_tokens=settings.rag.chunk_overlap,
            batch_size=settings.embeddings.batch_size,
            progress=progress,
        )
    finally:
        if embedder is None:
            await chosen.aclose()
