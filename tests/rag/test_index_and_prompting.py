from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.prompting import build_rag_messages, citations_for, cited_numbers
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.testing.fakes import FakeEmbedder


def _index(tmp_path: Path, embedder: FakeEmbedder) -> KnowledgeIndex:
    store = EmbeddedVectorStore(tmp_path / "index", embedder=embedder.name)
    return KnowledgeIndex(store, embedder, chunk_tokens=64, overlap_tokens=8, batch_size=2)


async def test_ingest_search_and_incremental_reingest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats purr and chase mice.\n")
    (docs / "ships.md").write_text("# Ships\n\nShips sail across the ocean with cargo.\n")
    embedder = FakeEmbedder()
    index = _index(tmp_path, embedder)
    progress: list[tuple[int, int]] = []
    report = await index.ingest_path(docs, progress=lambda d, t: progress.append((d, t)))
    assert (report.documents_indexed, report.chunks_indexed) == (2, 2)
    assert progress[-1] == (2, 2)

    hits = await index.search("which animal chases mice", k=1)
    assert hits[0].chunk.source == "cats.md"

    again = await index.ingest_path(docs)
    assert (again.documents_indexed, again.documents_unchanged) == (0, 2)

    (docs / "cats.md").write_text("# Cats\n\nCats sleep all day on the sofa.\n")
    changed = await index.ingest_path(docs)
    assert (changed.documents_indexed, changed.documents_unchanged) == (1, 1)
    assert await index.count() == 2
    hits = await index.search("sleep sofa", k=1)
    assert "sofa" in hits[0].chunk.text

    assert await index.delete([hits[0].chunk.document_id]) == 1
    assert await index.count() == 1
    assert await index.search("   ") == []


def _hit(number: int, score: float) -> ScoredChunk:
    chunk = Chunk(
        id=f"d{number}:0",
        document_id=f"d{number}",
        text="x" * 500,
        position=0,
        title=f"Doc {number}",
        source=f"d{number}.md",
        heading=f"Doc {number} > Part",
    )
    return ScoredChunk(chunk=chunk, score=score)


def test_rag_prompt_numbers_sources_and_cuts_them() -> None:
    messages = build_rag_messages(
        "What?", [_hit(1, 0.9), _hit(2, 0.5)], system_prompt="sys", max_source_chars=100
    )
    assert [m.role for m in messages] == ["system", "user"]
    user = messages[1].content
    assert "[1] Doc 1 > Part" in user
    assert "[2] Doc 2 > Part" in user
    assert user.rstrip().endswith("Question: What?")
    assert "x" * 101 not in user


def test_citations_flag_what_the_answer_cites() -> None:
    hits = [_hit(1, 0.91234), _hit(2, 0.5)]
    assert cited_numbers("See [2] and [7] and [2].", 2) == {2}
    citations = citations_for("Answer [2].", hits, excerpt_chars=20)
    assert [c.cited for c in citations] == [False, True]
    assert citations[0].score == 0.9123
    assert citations[0].excerpt == "x" * 20 + "…"
    assert citations[1].document_id == "d2"


def test_strip_citations_removes_marks_but_not_indexing() -> None:
    from genai_factory.rag.prompting import strip_citations

    assert strip_citations("Canberra [I].") == "Canberra."
    assert strip_citations("It is 8000 [1] and 9000 [12].") == "It is 8000 and 9000."
    assert strip_citations("Use x[0] and list[int].") == "Use x[0] and list[int]."
    assert strip_citations("See [note one].") == "See [note one]."


@pytest.mark.parametrize("size", [1, 2, 3, 100])
async def test_without_citations_across_pieces(size: int) -> None:
    from collections.abc import AsyncGenerator

    from genai_factory.rag.prompting import without_citations

    text = "Canberra [1] is the capital [II], x[0] stays, [long mark] stays [2]."

    async def pieces() -> AsyncGenerator[str, None]:
        for start in range(0, len(text), size):
            yield text[start : start + size]

    out = [piece async for piece in without_citations(pieces())]
    assert "".join(out) == "Canberra is the capital, x[0] stays, [long mark] stays."
