"""The ``VectorStore`` protocol every vector backend implements.

Contract:

* ``add(chunks, vectors)`` stores chunks with their unit-length vectors; adding a chunk id that is
  already stored replaces it.
* ``search(vector, k, where)`` returns at most ``k`` :class:`ScoredChunk` s, best first, scored by
  cosine similarity; ``where`` keeps only chunks whose ``document_id`` or ``metadata`` values equal
  every given value.
* ``delete(document_ids)`` removes every chunk of those documents and returns how many it removed.
* ``document_hashes()`` maps each stored document id to the content hash it was indexed from.
* Writes are durable when the call returns, and a crash mid-write never leaves a half-written store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from genai_factory.messages import Chunk, ScoredChunk


@runtime_checkable
class VectorStore(Protocol):
    async def add(self, chunks: Sequence[Chunk], vectors: NDArray[np.float32]) -> None: ...

    async def search(
        self, vector: NDArray[np.float32], k: int, where: Mapping[str, Any] | None = None
    ) -> list[ScoredChunk]: ...

    async def delete(self, document_ids: Sequence[str]) -> int: ...

    async def count(self) -> int: ...

    async def document_hashes(self) -> dict[str, str]: ...


def matches(chunk: Chunk, where: Mapping[str, Any] | None) -> bool:
    """True when the chunk satisfies every equality in ``where``."""
    if not where:
        return True
    for key, expected in where.items():
        actual = chunk.document_id if key == "document_id" else chunk.metadata.get(key)
        if actual != expected:
            return False
    return True
