"""``ServingIndex``: the active index version, followed across switches, plus full rebuilds.

The service, the CLI and the documents API all go through this object:

* ``search`` / ``search_documents`` / ``documents`` read the active version. Before each call it
  checks the ``ACTIVE`` file (one ``stat``), so ``genai-factory index activate`` in another process
  switches a running service on its next request.
* ``ingest_*`` and ``delete`` change the active version in place (incremental); with no version yet,
  the first one is created, filled, and activated when complete.
* ``rebuild`` is a full ingest: it builds a new version beside the serving one, marks it ready,
  activates it atomically, and prunes old versions (the previous one is always kept for rollback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from genai_factory.config import Settings
from genai_factory.exceptions import NotFoundError
from genai_factory.messages import Document, ScoredChunk
from genai_factory.rag.catalog import DocumentCatalog, DocumentRecord
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.index import IngestReport, KnowledgeIndex, Progress
from genai_factory.rag.keyword import KeywordIndex
from genai_factory.rag.loaders import iter_documents
from genai_factory.rag.rerank import get_reranker
from genai_factory.rag.retrieval import Reranker, RetrievalOptions
from genai_factory.rag.stores import get_store
from genai_factory.rag.stores.protocol import VectorStore, Where
from genai_factory.rag.versions import IndexVersions, VersionInfo

OpenVersion = Callable[[VersionInfo], KnowledgeIndex]


class ServingIndex:
    """The index the process serves from.

    Args:
        versions: the version directories and the ``ACTIVE`` pointer.
        open_version: opens one version as a :class:`KnowledgeIndex`.
        embedder, store: recorded in each new version's manifest.
        keep_versions: ready versions kept by pruning after a rebuild.
    """

    def __init__(
        self,
        versions: IndexVersions,
        open_version: OpenVersion,
        *,
        embedder: str,
        store: str,
        keep_versions: int = 3,
    ) -> None:
        self.versions = versions
        self._open_version = open_version
        self.embedder = embedder
        self.store_kind = store
        self.keep_versions = keep_versions
        self._marker: tuple[str | None, int] = (None, 0)
        self._current: KnowledgeIndex | None = None
        self._retired: list[KnowledgeIndex] = []
        self._lock = asyncio.Lock()
        #: Called (blocking, on a thread) after the versions are closed: shared clients.
        self.on_close: list[Callable[[], object]] = []

    async def current(self) -> KnowledgeIndex | None:
        """The active version's index (reopened when ``ACTIVE`` changed), or ``None``."""
        marker = self.versions.active_marker()
        if marker == self._marker and (self._current is not None or marker[0] is None):
            return self._current
        async with self._lock:
            marker = self.versions.active_marker()
            if marker != self._marker or (self._current is None and marker[0] is not None):
                self._switch(marker)
            return self._current

    def _switch(self, marker: tuple[str | None, int]) -> None:
        version_id = marker[0]
        if self._current is not None:
            self._retired.append(self._current)  # closed at aclose: requests may still use it
        self._current = (
            None if version_id is None else self._open_version(self.versions.get(version_id))
        )
        self._marker = marker

    def active_id(self) -> str | None:
        return self.versions.active_id()

    async def ensure(self) -> KnowledgeIndex:
        """The active index; an empty, ready version is created and activated when there is none."""
        index = await self.current()
        if index is not None:
            return index
        info = self.versions.create(embedder=self.embedder, store=self.store_kind)
        self.versions.mark_ready(info.id, documents=0, chunks=0)
        self.versions.activate(info.id)
        created = await self.current()
        assert created is not None
        return created

    async def count(self) -> int:
        index = await self.current()
        return 0 if index is None else await index.count()

    async def search(self, query: str, k: int = 4, where: Where | None = None) -> list[ScoredChunk]:
        index = await self.current()
        return [] if index is None else await index.search(query, k, where)

    async def search_documents(
        self, query: str, k: int = 10, where: Where | None = None
    ) -> list[ScoredChunk]:
        index = await self.current()
        return [] if index is None else await index.search_documents(query, k, where)

    async def documents(self) -> list[DocumentRecord]:
        index = await self.current()
        return [] if index is None else await index.documents()

    async def _record_counts(self, index: KnowledgeIndex) -> None:
        version_id = self.active_id()
        if version_id is not None:
            self.versions.update(
                version_id, documents=await index.document_count(), chunks=await index.count()
            )

    async def ingest_documents(
        self, documents: Iterable[Document], *, progress: Progress | None = None
    ) -> IngestReport:
        """Incremental ingest into the active version."""
        index = await self.ensure()
        report = await index.ingest_documents(documents, progress=progress)
        await self._record_counts(index)
        return report

    async def ingest_path(self, path: Path, *, progress: Progress | None = None) -> IngestReport:
        index = await self.ensure()
        report = await index.ingest_path(path, progress=progress)
        await self._record_counts(index)
        return report

    async def delete(self, document_ids: Sequence[str]) -> int:
        """Remove documents from the active version; :class:`NotFoundError` for unknown ids."""
        index = await self.current()
        unknown = [d for d in document_ids if index is None or not index.catalog.contains(d)]
        if index is None or unknown:
            raise NotFoundError(f"no indexed document {', '.join(unknown or document_ids)}")
        removed = await index.delete(document_ids)
        await self._record_counts(index)
        return removed

    async def rebuild(
        self,
        paths: Sequence[Path] = (),
        *,
        documents: Iterable[Document] = (),
        progress: Progress | None = None,
        note: str = "",
        activate: bool = True,
    ) -> tuple[VersionInfo, IngestReport]:
        """Full ingest into a new version; activate it only once it is complete.

        ``activate=False`` leaves the new version ready but not serving (and prunes nothing), so a
        caller can compare it with the active one first (``jobs reindex``).
        """
        info = self.versions.create(embedder=self.embedder, store=self.store_kind, note=note)
        index = self._open_version(info)
        report = IngestReport()
        try:
            report.merge(await index.ingest_documents(documents, progress=progress))
            for path in paths:
                skipped: list[str] = []
                part = await index.ingest_documents(
                    iter_documents(path, skipped=skipped), progress=progress
                )
                part.skipped = skipped
                report.merge(part)
            counts = {"documents": await index.document_count(), "chunks": await index.count()}
        finally:
            await index.aclose()
        ready = self.versions.mark_ready(info.id, **counts)
        if not activate:
            return ready, report
        active = self.versions.activate(info.id)
        self.versions.prune(self.keep_versions)
        ready.active = active.active
        return ready, report

    def open_version(self, version_id: str) -> KnowledgeIndex:
        """A version opened on its own, active or not (the caller closes it)."""
        return self._open_version(self.versions.get(version_id))

    def list_versions(self) -> list[VersionInfo]:
        return self.versions.all()

    def activate(self, version_id: str) -> VersionInfo:
        return self.versions.activate(version_id)

    async def aclose(self) -> None:
        for index in [*self._retired, *([self._current] if self._current else [])]:
            await index.aclose()
        self._retired.clear()
        self._current = None
        self._marker = (None, 0)
        for close in self.on_close:
            await asyncio.to_thread(close)
        self.on_close.clear()


def retrieval_options(settings: Settings) -> RetrievalOptions:
    """The retrieval options named by ``rag.retrieval``."""
    retrieval = settings.rag.retrieval
    return RetrievalOptions(
        mode=retrieval.mode,
        fusion=retrieval.fusion,
        dense_weight=retrieval.dense_weight,
        keyword_weight=retrieval.keyword_weight,
        rrf_k=retrieval.rrf_k,
        candidates=retrieval.candidates,
        keyword_weights=retrieval.keyword_weights,
        rerank_depth=retrieval.rerank_depth,
    )


def build_serving_index(
    settings: Settings, embedder: Embedder, *, reranker: Reranker | None = None
) -> ServingIndex:
    """The serving index named by ``settings`` (store, retrieval, chunking, versions)."""
    rag = settings.rag
    retrieval = rag.retrieval
    options = retrieval_options(settings)
    if reranker is None and retrieval.reranker != "none":
        reranker = get_reranker(retrieval.reranker, embedder, weight=retrieval.rerank_weight)
    qdrant_client: list[Any] = []  # one client for every version's collection, opened lazily

    def store_for(info: VersionInfo, directory: Path) -> VectorStore:
        if rag.store != "qdrant":  # Qdrant shares one client; every other store gets a directory
            return get_store(rag.store, directory=directory / "vectors", embedder=embedder.name)
        from genai_factory.rag.stores.qdrant import open_client

        qdrant = rag.qdrant
        if not qdrant_client:
            local = str(qdrant.path or settings.index_dir() / "qdrant")
            qdrant_client.append(
                open_client(
                    url=qdrant.base_url,
                    path=None if qdrant.base_url else local,
                    api_key=qdrant.resolved_api_key(),
                    timeout_s=qdrant.timeout_s,
                )
            )
            serving.on_close.append(qdrant_client[0].close)
        return get_store(
            "qdrant", collection=f"{qdrant.collection_prefix}{info.id}", client=qdrant_client[0]
        )

    def open_version(info: VersionInfo) -> KnowledgeIndex:
        directory = versions.directory(info.id)
        return KnowledgeIndex(
            store_for(info, directory),
            embedder,
            keyword=KeywordIndex(directory / "keyword.sqlite", weights=options.keyword_weights),
            catalog=DocumentCatalog(directory / "catalog.sqlite"),
            options=options,
            reranker=reranker,
            chunk_tokens=rag.chunk_tokens,
            overlap_tokens=rag.chunk_overlap,
            batch_size=settings.embeddings.batch_size,
        )

    versions = IndexVersions(settings.index_dir())
    serving = ServingIndex(
        versions,
        open_version,
        embedder=embedder.name,
        store=rag.store,
        keep_versions=rag.keep_versions,
    )
    return serving
