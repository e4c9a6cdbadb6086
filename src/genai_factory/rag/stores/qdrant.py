"""A :class:`VectorStore` on Qdrant through ``qdrant-client``: a server URL, or its local mode.

Local mode (``path=...`` or ``location=":memory:"``) runs the same client API in-process, so the
contract tests exercise exactly the calls a server receives. Each index version is one collection
(``collection``), created on the first ``add`` with cosine distance.

Points are keyed by a UUID derived from the chunk id; the payload holds the chunk (``chunk``),
``document_id`` and ``metadata``, so ``where`` filters become Qdrant payload filters. qdrant-client
sends no telemetry of its own; a server's is turned off with ``QDRANT__TELEMETRY_DISABLED=true``.
Every client exception is translated here into the package's tree.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from genai_factory.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    ProviderUnavailable,
)
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.rag.stores.protocol import Where

T = TypeVar("T")
_NAMESPACE = uuid.UUID("6f1c7d2e-4b7a-4f43-9a55-2f1e0c9d8b61")
_SCROLL_PAGE = 1024
_UPSERT_BATCH = 512


def open_client(
    *,
    url: str | None = None,
    path: str | None = None,
    location: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 30.0,
) -> Any:
    """A ``QdrantClient``: a server at ``url``, local mode in ``path``, or in memory."""
    from qdrant_client import QdrantClient

    try:
        if url:
            return QdrantClient(url=url, api_key=api_key, timeout=int(timeout_s))
        if path:
            return QdrantClient(path=path)
        return QdrantClient(location=location or ":memory:")
    except (RuntimeError, ValueError, OSError) as exc:
        raise ConfigurationError(f"cannot open Qdrant ({url or path or location}): {exc}") from exc


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


class QdrantVectorStore:
    """Chunks and vectors in one Qdrant collection.

    Args:
        collection: the collection name (one per index version).
        url: a Qdrant server, e.g. ``http://qdrant:6333``; or
        path: a directory for local mode (one process at a time); or
        location: ``":memory:"`` for an in-memory local mode.
        api_key: the server's key, if it needs one.
        client: an existing ``QdrantClient`` to share (then ``url``/``path`` are ignored).
    """

    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        path: str | None = None,
        location: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        client: Any = None,
    ) -> None:
        self.collection = collection
        self._lock = threading.Lock()
        self._owns_client = client is None
        if client is None:
            client = open_client(
                url=url, path=path, location=location, api_key=api_key, timeout_s=timeout_s
            )
        self._client = client
        self._dimension: int | None = None

    async def _call(self, work: Callable[[], T]) -> T:
        """Run a blocking client call on a thread; translate the client's errors once, here."""

        def guarded() -> T:
            from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

            try:
                with self._lock:
                    return work()
            except UnexpectedResponse as exc:
                if exc.status_code is not None and 400 <= exc.status_code < 500:
                    raise InvalidRequestError(f"Qdrant refused the request: {exc}") from exc
                raise ProviderUnavailable(f"Qdrant failed: {exc}", provider="qdrant") from exc
            except (ResponseHandlingException, ConnectionError, TimeoutError) as exc:
                raise ProviderUnavailable(f"Qdrant unreachable: {exc}", provider="qdrant") from exc

        return await asyncio.to_thread(guarded)

    def _exists(self) -> bool:
        return bool(self._client.collection_exists(self.collection))

    def _ensure_collection(self, dimension: int) -> None:
        from qdrant_client import models

        if self._dimension is None and self._exists():
            info = self._client.get_collection(self.collection)
            self._dimension = int(info.config.params.vectors.size)
        if self._dimension is None:
            self._client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            )
            with warnings.catch_warnings():  # local mode says payload indexes do nothing there
                warnings.simplefilter("ignore", UserWarning)
                self._client.create_payload_index(
                    self.collection, "document_id", field_schema=models.PayloadSchemaType.KEYWORD
                )
            self._dimension = dimension
        if dimension != self._dimension:
            raise InvalidRequestError(
                f"vectors have dimension {dimension}, the store holds {self._dimension}"
            )

    async def add(self, chunks: Sequence[Chunk], vectors: NDArray[np.float32]) -> None:
        if len(chunks) != vectors.shape[0]:
            raise InvalidRequestError("one vector per chunk is required")
        if not chunks:
            return
        from qdrant_client import models

        def work() -> None:
            self._ensure_collection(int(vectors.shape[1]))
            points = [
                models.PointStruct(
                    id=point_id(chunk.id),
                    vector=np.asarray(vector, dtype=np.float32).tolist(),
                    payload=_payload(chunk),
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ]
            for start in range(0, len(points), _UPSERT_BATCH):
                self._client.upsert(
                    self.collection, points=points[start : start + _UPSERT_BATCH], wait=True
                )

        await self._call(work)

    async def search(
        self, vector: NDArray[np.float32], k: int, where: Where | None = None
    ) -> list[ScoredChunk]:
        if k < 1:
            return []

        def work() -> list[ScoredChunk]:
            if not self._exists():
                return []
            result = self._client.query_points(
                self.collection,
                query=np.asarray(vector, dtype=np.float32).reshape(-1).tolist(),
                limit=k,
                query_filter=_filter(where),
                with_payload=True,
            )
            return [
                ScoredChunk(chunk=Chunk.model_validate(p.payload["chunk"]), score=float(p.score))
                for p in result.points
            ]

        return await self._call(work)

    async def fetch(self, chunk_ids: Sequence[str]) -> tuple[list[Chunk], NDArray[np.float32]]:
        def work() -> tuple[list[Chunk], NDArray[np.float32]]:
            if not chunk_ids or not self._exists():
                return [], np.zeros((0, self._dimension or 0), dtype=np.float32)
            records = self._client.retrieve(
                self.collection,
                ids=[point_id(i) for i in chunk_ids],
                with_payload=True,
                with_vectors=True,
            )
            by_id = {r.payload["chunk"]["id"]: r for r in records}
            found = [by_id[i] for i in chunk_ids if i in by_id]
            chunks = [Chunk.model_validate(r.payload["chunk"]) for r in found]
            dimension = self._dimension or 0
            matrix = np.array([r.vector for r in found], dtype=np.float32).reshape(-1, dimension)
            return chunks, _unit_rows(matrix)

        return await self._call(work)

    async def delete(self, document_ids: Sequence[str]) -> int:
        from qdrant_client import models

        def work() -> int:
            if not document_ids or not self._exists():
                return 0
            selector = _filter({"document_id": list(document_ids)})
            doomed = int(
                self._client.count(self.collection, count_filter=selector, exact=True).count
            )
            if doomed:
                self._client.delete(
                    self.collection,
                    points_selector=models.FilterSelector(filter=selector),
                    wait=True,
                )
            return doomed

        return await self._call(work)

    async def count(self) -> int:
        def work() -> int:
            if not self._exists():
                return 0
            return int(self._client.count(self.collection, exact=True).count)

        return await self._call(work)

    async def document_hashes(self) -> dict[str, str]:
        def work() -> dict[str, str]:
            hashes: dict[str, str] = {}
            if not self._exists():
                return hashes
            offset = None
            while True:
                records, offset = self._client.scroll(
                    self.collection,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=["document_id", "metadata"],
                )
                for record in records:
                    payload = record.payload or {}
                    metadata = payload.get("metadata") or {}
                    hashes[payload["document_id"]] = str(metadata.get("content_hash", ""))
                if offset is None:
                    return hashes

        return await self._call(work)

    async def drop(self) -> None:
        """Delete the whole collection (an index version being discarded)."""

        def work() -> None:
            if self._exists():
                self._client.delete_collection(self.collection)
            self._dimension = None

        await self._call(work)

    async def aclose(self) -> None:
        if self._owns_client:
            await asyncio.to_thread(self._client.close)


def _payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk": chunk.model_dump(mode="json"),
        "document_id": chunk.document_id,
        "metadata": chunk.metadata,
    }


def _filter(where: Where | None) -> Any:
    if not where:
        return None
    from qdrant_client import models

    conditions = []
    for key, expected in where.items():
        field = "document_id" if key == "document_id" else f"metadata.{key}"
        match: Any
        if isinstance(expected, list | tuple | set | frozenset):
            match = models.MatchAny(any=list(expected))
        else:
            match = models.MatchValue(value=expected)
        conditions.append(models.FieldCondition(key=field, match=match))
    return models.Filter(must=conditions)


def _unit_rows(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: NDArray[np.float32] = (matrix / norms).astype(np.float32)
    return result
