"""Every vector store passes the same contract (``genai_factory.testing.VectorStoreContract``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from genai_factory.rag.stores import EmbeddedVectorStore, VectorStore, get_store
from genai_factory.rag.stores.qdrant import QdrantVectorStore
from genai_factory.testing import VectorStoreContract


class TestEmbeddedStore(VectorStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[VectorStore]:
        store = EmbeddedVectorStore(tmp_path / "vectors", embedder="e")
        yield store
        await store.aclose()

    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Callable[[], VectorStore]:
        return lambda: EmbeddedVectorStore(tmp_path / "vectors", embedder="e")


class TestQdrantLocalStore(VectorStoreContract):
    """qdrant-client's local mode: the same client API a Qdrant server receives."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[VectorStore]:
        store = get_store("qdrant", collection="contract", path=str(tmp_path / "qdrant"))
        yield store
        await store.aclose()

    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Callable[[], VectorStore]:
        return lambda: QdrantVectorStore("contract", path=str(tmp_path / "qdrant"))


async def test_qdrant_versions_are_separate_collections_of_one_client(tmp_path: Path) -> None:
    import numpy as np

    from genai_factory.testing.contracts import contract_chunk, unit

    first = QdrantVectorStore("v1", location=":memory:")
    second = QdrantVectorStore("v2", client=first._client)
    await first.add([contract_chunk("a", 0)], np.stack([unit(1, 0)]))
    assert (await first.count(), await second.count()) == (1, 0)
    await first.drop()
    assert await first.count() == 0
    await second.aclose()  # shared client: not closed by the store that does not own it
    await first.aclose()
