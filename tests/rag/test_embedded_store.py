from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genai_factory.exceptions import ConfigurationError, InvalidRequestError
from genai_factory.messages import Chunk
from genai_factory.rag.stores import EmbeddedVectorStore, VectorStore


def _chunk(doc: str, position: int, **metadata: object) -> Chunk:
    return Chunk(
        id=f"{doc}:{position}",
        document_id=doc,
        text=f"{doc} text {position}",
        position=position,
        title=doc,
        source=f"{doc}.md",
        metadata={"content_hash": f"h-{doc}", **metadata},
    )


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


async def test_search_ranks_by_cosine_and_persists(tmp_path: Path) -> None:
    store = EmbeddedVectorStore(tmp_path, embedder="e")
    assert isinstance(store, VectorStore)
    chunks = [_chunk("a", 0, lang="en"), _chunk("a", 1, lang="de"), _chunk("b", 0, lang="en")]
    vectors = np.stack([_unit(1, 0, 0), _unit(0.8, 0.6, 0), _unit(0, 0, 1)])
    await store.add(chunks, vectors)
    hits = await store.search(_unit(1, 0.1, 0), 2)
    assert [h.chunk.id for h in hits] == ["a:0", "a:1"]
    assert hits[0].score > hits[1].score
    assert hits[0].score == pytest.approx(float(_unit(1, 0.1, 0) @ _unit(1, 0, 0)), rel=1e-5)

    reopened = EmbeddedVectorStore(tmp_path, embedder="e")
    assert await reopened.count() == 3
    filtered = await reopened.search(_unit(1, 0, 0), 5, where={"lang": "en"})
    assert [h.chunk.id for h in filtered] == ["a:0", "b:0"]
    only_b = await reopened.search(_unit(1, 0, 0), 5, where={"document_id": "b"})
    assert [h.chunk.id for h in only_b] == ["b:0"]
    assert await reopened.document_hashes() == {"a": "h-a", "b": "h-b"}


async def test_replace_and_delete(tmp_path: Path) -> None:
    store = EmbeddedVectorStore(tmp_path)
    await store.add([_chunk("a", 0), _chunk("b", 0)], np.stack([_unit(1, 0), _unit(0, 1)]))
    await store.add([_chunk("a", 0)], np.stack([_unit(0, 1)]))  # same id: replaced
    assert await store.count() == 2
    assert await store.delete(["a"]) == 1
    assert await store.delete(["missing"]) == 0
    assert [h.chunk.id for h in await EmbeddedVectorStore(tmp_path).search(_unit(0, 1), 5)] == [
        "b:0"
    ]


async def test_empty_store_and_bad_input(tmp_path: Path) -> None:
    store = EmbeddedVectorStore(tmp_path)
    assert await store.search(_unit(1, 0), 3) == []
    with pytest.raises(InvalidRequestError):
        await store.add([_chunk("a", 0)], np.zeros((2, 2), dtype=np.float32))
    await store.add([_chunk("a", 0)], np.stack([_unit(1, 0)]))
    with pytest.raises(InvalidRequestError, match="dimension"):
        await store.add([_chunk("b", 0)], np.stack([_unit(1, 0, 0)]))


async def test_other_embedder_is_refused(tmp_path: Path) -> None:
    store = EmbeddedVectorStore(tmp_path, embedder="one")
    await store.add([_chunk("a", 0)], np.stack([_unit(1, 0)]))
    with pytest.raises(ConfigurationError, match="embedder"):
        EmbeddedVectorStore(tmp_path, embedder="two")


async def test_a_crash_mid_write_leaves_the_old_store(tmp_path: Path) -> None:
    store = EmbeddedVectorStore(tmp_path)
    await store.add([_chunk("a", 0)], np.stack([_unit(1, 0)]))
    # A temporary file left behind by a crash before os.replace is ignored on reopen.
    (tmp_path / ".store.npz.tmp").write_bytes(b"partial garbage")
    assert await EmbeddedVectorStore(tmp_path).count() == 1


async def test_unreadable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "store.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigurationError, match="unreadable"):
        EmbeddedVectorStore(tmp_path)
