"""Contract test mixins: one shared suite every implementation of an interface must pass.

Use it by subclassing and providing a ``store`` fixture (a fresh, empty store) and a ``reopen``
fixture (a callable that opens the same store again, to check durability)::

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            store = MyStore(tmp_path)
            yield store
            await store.aclose()

        @pytest.fixture
        def reopen(self, tmp_path):
            return lambda: MyStore(tmp_path)

Needs pytest and pytest-asyncio (``asyncio_mode = "auto"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from genai_factory.exceptions import InvalidRequestError
from genai_factory.messages import Chunk
from genai_factory.rag.stores.protocol import VectorStore


def contract_chunk(document_id: str, position: int, **metadata: Any) -> Chunk:
    """A small chunk for contract tests, with a content hash per document."""
    return Chunk(
        id=f"{document_id}:{position}",
        document_id=document_id,
        text=f"{document_id} text {position}",
        position=position,
        title=document_id,
        source=f"{document_id}.md",
        metadata={"content_hash": f"h-{document_id}", **metadata},
    )


def unit(*values: float) -> NDArray[np.float32]:
    vector = np.array(values, dtype=np.float32)
    normalised: NDArray[np.float32] = vector / np.linalg.norm(vector)
    return normalised


class VectorStoreContract:
    """The behaviour of :class:`genai_factory.rag.stores.VectorStore`, for any backend."""

    async def _seed(self, store: VectorStore) -> None:
        chunks = [
            contract_chunk("a", 0, lang="en", kind="guide"),
            contract_chunk("a", 1, lang="de", kind="guide"),
            contract_chunk("b", 0, lang="en", kind="faq"),
        ]
        await store.add(chunks, np.stack([unit(1, 0, 0), unit(0.8, 0.6, 0), unit(0, 0, 1)]))

    async def test_is_a_vector_store(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)

    async def test_empty_store(self, store: VectorStore) -> None:
        assert await store.count() == 0
        assert await store.search(unit(1, 0, 0), 3) == []
        assert await store.document_hashes() == {}
        assert await store.delete(["nothing"]) == 0
        chunks, vectors = await store.fetch(["nothing:0"])
        assert chunks == [] and len(vectors) == 0

    async def test_search_ranks_by_cosine(self, store: VectorStore) -> None:
        await self._seed(store)
        query = unit(1, 0.1, 0)
        hits = await store.search(query, 2)
        assert [h.chunk.id for h in hits] == ["a:0", "a:1"]
        assert hits[0].score == pytest.approx(float(query @ unit(1, 0, 0)), abs=1e-4)
        assert hits[0].score > hits[1].score
        assert hits[0].chunk == contract_chunk("a", 0, lang="en", kind="guide")
        assert len(await store.search(query, 10)) == 3

    async def test_metadata_filters(self, store: VectorStore) -> None:
        await self._seed(store)
        query = unit(1, 0, 0)
        english = await store.search(query, 5, where={"lang": "en"})
        assert [h.chunk.id for h in english] == ["a:0", "b:0"]
        only_b = await store.search(query, 5, where={"document_id": "b"})
        assert [h.chunk.id for h in only_b] == ["b:0"]
        both = await store.search(query, 5, where={"lang": "en", "kind": "faq"})
        assert [h.chunk.id for h in both] == ["b:0"]
        any_of = await store.search(query, 5, where={"lang": ["de", "fr"]})
        assert [h.chunk.id for h in any_of] == ["a:1"]
        assert await store.search(query, 5, where={"lang": "xx"}) == []

    async def test_fetch_returns_chunks_and_vectors_in_order(self, store: VectorStore) -> None:
        await self._seed(store)
        chunks, vectors = await store.fetch(["b:0", "missing", "a:0"])
        assert [c.id for c in chunks] == ["b:0", "a:0"]
        assert vectors.shape == (2, 3)
        assert np.allclose(vectors[0], unit(0, 0, 1), atol=1e-5)
        assert np.allclose(vectors[1], unit(1, 0, 0), atol=1e-5)

    async def test_same_id_replaces_and_delete_by_document(self, store: VectorStore) -> None:
        await self._seed(store)
        await store.add([contract_chunk("a", 0, lang="en")], np.stack([unit(0, 0, 1)]))
        assert await store.count() == 3
        hits = await store.search(unit(0, 0, 1), 3)
        assert {h.chunk.id for h in hits[:2]} == {"a:0", "b:0"}
        assert await store.document_hashes() == {"a": "h-a", "b": "h-b"}
        assert await store.delete(["a"]) == 2
        assert await store.delete(["a", "missing"]) == 0
        assert [h.chunk.id for h in await store.search(unit(1, 0, 0), 5)] == ["b:0"]

    async def test_bad_input_is_refused(self, store: VectorStore) -> None:
        with pytest.raises(InvalidRequestError):
            await store.add([contract_chunk("a", 0)], np.zeros((2, 3), dtype=np.float32))
        await store.add([contract_chunk("a", 0)], np.stack([unit(1, 0, 0)]))
        with pytest.raises(InvalidRequestError, match="dimension"):
            await store.add([contract_chunk("b", 0)], np.stack([unit(1, 0)]))

    async def test_writes_are_durable(
        self, store: VectorStore, reopen: Callable[[], VectorStore]
    ) -> None:
        await self._seed(store)
        await store.aclose()
        again = reopen()
        try:
            assert await again.count() == 3
            hits = await again.search(unit(0, 0, 1), 1)
            assert hits[0].chunk.id == "b:0"
        finally:
            await again.aclose()
