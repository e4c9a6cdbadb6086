"""``KnowledgeIndex``: load → split → embed → store, and query → top-k chunks.

Ingestion is incremental: a document whose content hash is already indexed is skipped, a changed one
has its old chunks replaced. Embedding runs in batches, so it dominates the cost of an ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genai_factory.messages import Chunk, Document, ScoredChunk
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.loaders import load_path
from genai_factory.rag.splitting import embedding_text, split_document
from genai_factory.rag.stores.protocol import VectorStore

Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one ingest did."""

    documents_seen: int = 0
    documents_indexed: int = 0
    documents_unchanged: int = 0
    chunks_indexed: int = 0
    document_ids: list[str] = field(default_factory=list)


class KnowledgeIndex:
    """Documents made searchable by meaning.

    Args:
        store: where chunks and vectors live.
        embedder: turns chunk texts and queries into vectors (the same one for both).
        chunk_tokens, overlap_tokens: chunking parameters.
        batch_size: chunks embedded per call.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        chunk_tokens: int = 160,
        overlap_tokens: int = 32,
        batch_size: int = 64,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.batch_size = batch_size

    async def count(self) -> int:
        return await self.store.count()

    async def ingest_documents(
        self, documents: Iterable[Document], *, progress: Progress | None = None
    ) -> IngestReport:
        """Index the documents that are new or changed; skip the unchanged ones."""
        report = IngestReport()
        known = await self.store.document_hashes()
        pending: list[tuple[Document, list[Chunk]]] = []
        for document in documents:
            report.documents_seen += 1
            if known.get(document.id) == document.content_hash:
                report.documents_unchanged += 1
                continue
            chunks = split_document(
                document, chunk_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens
            )
            pending.append((document, chunks))
        total = sum(len(chunks) for _, chunks in pending)
        done = 0
        for document, chunks in pending:
            if document.id in known:
                await self.store.delete([document.id])
            for start in range(0, len(chunks), self.batch_size):
                batch = chunks[start : start + self.batch_size]
                vectors = await self.embedder.embed([embedding_text(c) for c in batch])
                await self.store.add(batch, vectors)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
            report.documents_indexed += 1
            report.chunks_indexed += len(chunks)
            report.document_ids.append(document.id)
        return report

    async def ingest_path(self, path: Path, *, progress: Progress | None = None) -> IngestReport:
        """Index every supported file under ``path``."""
        return await self.ingest_documents(load_path(path), progress=progress)

    async def search(
        self, query: str, k: int = 4, where: Mapping[str, Any] | None = None
    ) -> list[ScoredChunk]:
        """The ``k`` chunks most similar to ``query``, best first."""
        if not query.strip():
            return []
        vector = await self.embedder.embed([query])
        return await self.store.search(np.asarray(vector[0]), k, where)

    async def delete(self, document_ids: Sequence[str]) -> int:
        return await self.store.delete(document_ids)
