"""``KnowledgeIndex``: one index version — load → split → embed → store, and hybrid search.

Ingestion is incremental and de-duplicating: a document whose content hash is already indexed under
its id is skipped; a changed one has its chunks replaced; a document whose content is already
indexed under another id is skipped as a duplicate. Chunks are embedded in batches (so embedding
dominates the cost) and committed in groups: vectors, then keyword rows, then the catalog row that
makes the document visible. A failure mid-group removes what that group wrote, so nothing half-written
is ever searched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from genai_factory.messages import Chunk, Document, ScoredChunk
from genai_factory.rag.catalog import DocumentCatalog, DocumentRecord
from genai_factory.rag.embedding import Embedder, Vectors
from genai_factory.rag.keyword import KeywordIndex
from genai_factory.rag.loaders import iter_documents
from genai_factory.rag.retrieval import HybridRetriever, Reranker, RetrievalOptions
from genai_factory.rag.splitting import embedding_text, split_document
from genai_factory.rag.stores.protocol import VectorStore, Where

Progress = Callable[[int, int], None]


class SearchIndex(Protocol):
    """What answering needs from an index: a :class:`KnowledgeIndex` or the serving index."""

    async def search(
        self, query: str, k: int = 4, where: Where | None = None
    ) -> list[ScoredChunk]: ...


@dataclass
class IngestReport:
    """What one ingest did."""

    documents_seen: int = 0
    documents_indexed: int = 0
    documents_unchanged: int = 0
    documents_duplicate: int = 0
    chunks_indexed: int = 0
    document_ids: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.documents_seen += other.documents_seen
        self.documents_indexed += other.documents_indexed
        self.documents_unchanged += other.documents_unchanged
        self.documents_duplicate += other.documents_duplicate
        self.chunks_indexed += other.chunks_indexed
        self.document_ids += other.document_ids
        self.duplicates.update(other.duplicates)
        self.skipped += other.skipped

    def summary(self) -> dict[str, int]:
        return {
            "documents_seen": self.documents_seen,
            "documents_indexed": self.documents_indexed,
            "documents_unchanged": self.documents_unchanged,
            "documents_duplicate": self.documents_duplicate,
            "chunks_indexed": self.chunks_indexed,
        }


Pending = list[tuple[Document, list[Chunk]]]


class KnowledgeIndex:
    """Documents made searchable by meaning and by keywords.

    Args:
        store: where chunks and vectors live.
        embedder: turns chunk texts and queries into vectors (the same one for both).
        keyword: the BM25 index beside the vectors (in memory when not given).
        catalog: the record of indexed documents (in memory when not given).
        options, reranker: how queries are answered (see :mod:`genai_factory.rag.retrieval`).
        chunk_tokens, overlap_tokens: chunking parameters.
        batch_size: chunks embedded per call.
        commit_chunks: chunks written per commit group (bounds memory and lost work on a crash).
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        keyword: KeywordIndex | None = None,
        catalog: DocumentCatalog | None = None,
        options: RetrievalOptions | None = None,
        reranker: Reranker | None = None,
        chunk_tokens: int = 160,
        overlap_tokens: int = 32,
        batch_size: int = 64,
        commit_chunks: int = 2048,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.keyword = keyword if keyword is not None else KeywordIndex()
        self.catalog = catalog if catalog is not None else DocumentCatalog()
        self.retriever = HybridRetriever(
            store, self.keyword, embedder, options=options, reranker=reranker
        )
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.batch_size = batch_size
        self.commit_chunks = commit_chunks

    async def count(self) -> int:
        """Chunks in the index."""
        return await self.store.count()

    async def document_count(self) -> int:
        return len(self.catalog)

    async def documents(self) -> list[DocumentRecord]:
        return await self.catalog.records()

    async def document(self, document_id: str) -> DocumentRecord | None:
        return await self.catalog.get(document_id)

    def _plan(
        self, documents: Iterable[Document], known: dict[str, str], report: IngestReport
    ) -> Pending:
        owners = {digest: doc_id for doc_id, digest in known.items()}
        pending: Pending = []
        for document in documents:
            report.documents_seen += 1
            if known.get(document.id) == document.content_hash:
                report.documents_unchanged += 1
                continue
            owner = owners.get(document.content_hash)
            if owner is not None and owner != document.id:
                report.documents_duplicate += 1
                report.duplicates[document.id] = owner
                continue
            owners[document.content_hash] = document.id
            chunks = split_document(
                document, chunk_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens
            )
            if chunks:
                pending.append((document, chunks))
        return pending

    async def ingest_documents(
        self, documents: Iterable[Document], *, progress: Progress | None = None
    ) -> IngestReport:
        """Index the documents that are new or changed; skip unchanged ones and duplicates."""
        report = IngestReport()
        known = await self.catalog.hashes()
        pending = self._plan(documents, known, report)
        total = sum(len(chunks) for _, chunks in pending)
        done = 0
        if progress is not None:
            progress(0, total)
        for group in _groups(pending, self.commit_chunks):
            chunks = [chunk for _, doc_chunks in group for chunk in doc_chunks]
            vectors = []
            for start in range(0, len(chunks), self.batch_size):
                batch = chunks[start : start + self.batch_size]
                vectors.append(await self.embedder.embed([embedding_text(c) for c in batch]))
                done += len(batch)
                if progress is not None:
                    progress(done, total)
            prepare = getattr(self.retriever.reranker, "prepare", None)
            if prepare is not None:
                await prepare(chunks)  # e.g. sentence vectors, so queries need not compute them
            await self._commit(group, chunks, np.concatenate(vectors), known)
            report.documents_indexed += len(group)
            report.chunks_indexed += len(chunks)
            report.document_ids += [document.id for document, _ in group]
        return report

    async def _commit(
        self,
        group: Pending,
        chunks: list[Chunk],
        vectors: Vectors,
        known: dict[str, str],
    ) -> None:
        ids = [document.id for document, _ in group]
        replaced = [doc_id for doc_id in ids if doc_id in known]
        try:
            if replaced:
                await self.store.delete(replaced)
                await self.keyword.delete(replaced)
            await self.store.add(chunks, vectors.astype(np.float32))
            await self.keyword.add(chunks)
            await self.catalog.put([(document, len(doc_chunks)) for document, doc_chunks in group])
        except BaseException:
            await self._remove(ids)
            raise

    async def _remove(self, document_ids: Sequence[str]) -> int:
        await self.catalog.delete(document_ids)
        await self.keyword.delete(document_ids)
        return await self.store.delete(document_ids)

    async def ingest_path(self, path: Path, *, progress: Progress | None = None) -> IngestReport:
        """Index every supported file under ``path`` (unreadable files are listed in ``skipped``)."""
        skipped: list[str] = []
        report = await self.ingest_documents(
            iter_documents(path, skipped=skipped), progress=progress
        )
        report.skipped = skipped
        return report

    async def search(self, query: str, k: int = 4, where: Where | None = None) -> list[ScoredChunk]:
        """The ``k`` best chunks for ``query``, best first."""
        return await self.retriever.search(query, k, where=where, known=self._known())

    async def search_documents(
        self, query: str, k: int = 10, where: Where | None = None
    ) -> list[ScoredChunk]:
        """The best chunk of each of the ``k`` best documents, best first."""
        return await self.retriever.search(
            query, k, where=where, per_document=True, known=self._known()
        )

    def _known(self) -> dict[str, int]:
        return self.catalog.chunk_counts()

    async def delete(self, document_ids: Sequence[str]) -> int:
        """Remove documents; returns how many chunks were removed."""
        return await self._remove(list(document_ids))

    async def aclose(self) -> None:
        """Close this version's keyword index, catalog and store (not the shared embedder)."""
        self.keyword.close()
        self.catalog.close()
        await self.store.aclose()


def _groups(pending: Pending, limit: int) -> Iterable[Pending]:
    group: Pending = []
    size = 0
    for item in pending:
        if group and size + len(item[1]) > limit:
            yield group
            group, size = [], 0
        group.append(item)
        size += len(item[1])
    if group:
        yield group
