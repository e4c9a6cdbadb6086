from __future__ import annotations

from pathlib import Path

import numpy as np

from genai_factory.messages import Chunk
from genai_factory.rag.embedding_cache import CachedEmbedder
from genai_factory.rag.keyword import KeywordIndex, base_form, match_expression, query_terms
from genai_factory.testing.fakes import FakeEmbedder


def _chunk(doc: str, position: int, text: str, title: str = "", heading: str = "") -> Chunk:
    return Chunk(
        id=f"{doc}:{position}",
        document_id=doc,
        text=text,
        position=position,
        title=title or doc,
        source=f"{doc}.md",
        heading=heading,
    )


def test_query_terms_drop_stop_words_and_syntax() -> None:
    assert query_terms('What is the "NEAR" of AND OR cats? cats!') == ["near", "cats"]
    assert match_expression("the of") == ""
    assert match_expression('x") OR (y') == '"x" OR "y"'


def test_a_derived_ly_word_is_searched_with_its_base() -> None:
    assert base_form("monthly") == "month" and base_form("hourly") == "hour"
    assert base_form("only") is None and base_form("early") is None and base_form("apply") is None
    assert match_expression("a monthly budget") == '"monthly" OR "month" OR "budget"'


async def test_a_derived_word_finds_its_base_in_the_text(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw.sqlite")
    await index.add(
        [_chunk("a", 0, "Create a key with --budget-period month."), _chunk("b", 0, "Cats.")]
    )
    # Porter keeps "monthly" (monthli) and "month" apart: only the base word matches
    assert [h.chunk_id for h in await index.search("monthly", 5)] == ["a:0"]


async def test_bm25_ranks_stems_replaces_and_deletes(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw.sqlite")
    await index.add(
        [
            _chunk("a", 0, "Running shoes for marathon runners."),
            _chunk("a", 1, "Socks keep feet dry."),
            _chunk("b", 0, "The history of the bicycle.", title="Cycling"),
            _chunk("c", 0, "Bicycles, bicycles and more bicycles: a bicycle shop."),
        ]
    )
    hits = await index.search("run", 5)
    # stemming: run ~ running, runners; a:1 matches through its neighbour a:0 (the context field)
    assert [h.chunk_id for h in hits] == ["a:0", "a:1"]
    bikes = await index.search("bicycle", 5)
    assert [h.chunk_id for h in bikes] == ["c:0", "b:0"]  # more occurrences first
    assert bikes[0].score > bikes[1].score > 0
    assert [h.chunk_id for h in await index.search("cycling", 5)] == ["b:0"]  # title field
    assert await index.search("the of and", 5) == []
    assert await index.search('") OR NEAR(', 5) == []

    scores = index.scores_blocking("bicycle", ["b:0", "a:1", "missing"])
    assert set(scores) == {"b:0"} and scores["b:0"] == bikes[1].score

    await index.add([_chunk("c", 0, "Now about trains.")])  # same id: replaced
    assert [h.chunk_id for h in await index.search("bicycle", 5)] == ["b:0"]
    assert await index.delete(["a", "zzz"]) == 2
    assert await index.count() == 2
    index.close()
    reopened = KeywordIndex(tmp_path / "kw.sqlite")
    assert [h.chunk_id for h in await reopened.search("trains", 5)] == ["c:0"]
    reopened.close()


async def test_field_weights_change_the_order() -> None:
    chunks = [
        _chunk("t", 0, "General notes.", title="Pumps"),
        _chunk("b", 0, "Pumps pumps and pumps move water around the whole system."),
    ]
    body_first = KeywordIndex(weights=(0.1, 1.0, 1.0, 0.0))
    title_first = KeywordIndex(weights=(10.0, 1.0, 1.0, 0.0))
    for index in (body_first, title_first):
        await index.add(chunks)
    assert (await body_first.search("pumps", 1))[0].chunk_id == "b:0"
    assert (await title_first.search("pumps", 1))[0].chunk_id == "t:0"


async def test_cached_embedder_embeds_each_text_once(tmp_path: Path) -> None:
    inner = FakeEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = await cached.embed(["alpha beta", "gamma", "alpha beta"])
    assert inner.calls == 1 and cached.misses == 2
    again = await cached.embed(["gamma", "alpha beta"])
    assert inner.calls == 1 and cached.hits == 3
    assert np.array_equal(again[1], first[0])
    await cached.aclose()
    reopened = CachedEmbedder(FakeEmbedder(), tmp_path)
    vectors = await reopened.embed(["alpha beta", "delta"])
    assert reopened.misses == 1 and np.allclose(vectors[0], first[0])
    assert (await reopened.embed([])).shape == (0, 256)
    assert reopened.path.name == "fake-embedder.sqlite"
    await reopened.aclose()
