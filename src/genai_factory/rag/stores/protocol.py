"""The ``VectorStore`` protocol every vector backend implements.

Contract (checked for every backend by :class:`genai_factory.testing.VectorStoreContract`):

* ``add(chunks, vectors)`` stores chunks with their unit-length vectors; adding a chunk id that is
  already stored replaces it. One vector per chunk, or :class:`InvalidRequestError`.
* ``search(vector, k, where)`` returns at most ``k`` :class:`ScoredChunk` s, best first, scored by
  cosine similarity. ``where`` is a metadata filter: every key must match; a key is ``document_id``
  or a ``metadata`` key, a value is either one value (equality) or a list of values (any of them).
* ``fetch(chunk_ids)`` returns the stored chunks among those ids with their vectors, in the order
  asked, skipping unknown ids.
* ``delete(document_ids)`` removes every chunk of those documents and returns how many it removed.
* ``document_hashes()`` maps each stored document id to the content hash it was indexed from.
* ``count()`` is the number of stored chunks.
* Writes are durable when the call returns, and a crash mid-write never leaves a half-written store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from genai_factory.messages import Chunk, ScoredChunk

Where = Mapping[str, Any]


@runtime_checkable
class VectorStore(Protocol):
    async def add(self, chunks: Sequence[Chunk], vectors: NDArray[np.float32]) -> None: ...

    async def search(
        self, vector: NDArray[np.float32], k: int, where: Where | None = None
    ) -> list[ScoredChunk]: ...

    async def fetch(self, chunk_ids: Sequence[str]) -> tuple[list[Chunk], NDArray[np.float32]]: ...

    async def delete(self, document_ids: Sequence[str]) -> int: ...

    async def count(self) -> int: ...

    async def document_hashes(self) -> dict[str, str]: ...

    async def aclose(self) -> None: ...


def field_value(chunk: Chunk, key: str) -> Any:
    """The value a filter key refers to: ``document_id`` or a metadata entry."""
    return chunk.document_id if key == "document_id" else chunk.metadata.get(key)


def matches(chunk: Chunk, where: Where | None) -> bool:
    """True when the chunk satisfies every condition in ``where`` (equality, or any of a list)."""
    if not where:
        return True
    for key, expected in where.items():
        actual = field_value(chunk, key)
        if isinstance(expected, list | tuple | set | frozenset):
            if actual not in expected:
                return False
        elif actual != expected:
            return False
    return True
