from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from genai_factory.exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnreadableDocument,
    UnsupportedFileType,
)
from genai_factory.llm.tokens import estimate_tokens
from genai_factory.rag.loaders import load_file, load_path
from genai_factory.rag.splitting import embedding_text, sections, split_document

GUIDE = """# Guide

Intro paragraph.

## Install

Run make.

### Details

```bash
# not a heading inside a fence

make run
```

## Use

Ask questions.
"""


def test_sections_follow_headings_and_keep_code_fences() -> None:
    found = sections(GUIDE)
    assert [s.heading for s in found] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > Details",
        "Guide > Use",
    ]
    assert "# not a heading inside a fence" in found[2].paragraphs[0]
    assert "make run" in found[2].paragraphs[0]


def test_load_directory_gives_stable_ids_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(GUIDE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("plain text")
    (tmp_path / ".hidden.md").write_text("# secret")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "empty.md").write_text("")
    docs = load_path(tmp_path)
    assert [d.source for d in docs] == ["a.md", "sub/b.txt"]
    assert docs[0].title == "Guide"
    assert docs[1].title == "B"
    first_ids = [d.id for d in docs]
    (tmp_path / "a.md").write_text(GUIDE + "\nMore.\n")
    again = load_path(tmp_path)
    assert [d.id for d in again] == first_ids
    assert again[0].content_hash != docs[0].content_hash
    assert again[0].metadata["type"] == "md"


def test_missing_path_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_path(tmp_path / "absent")
    odd = tmp_path / "x.docx"
    odd.write_bytes(b"PK")
    with pytest.raises(UnsupportedFileType, match="unsupported"):
        load_file(odd)
    broken = tmp_path / "x.pdf"
    broken.write_bytes(b"%PDF")
    with pytest.raises(UnreadableDocument, match="not a readable PDF"):
        load_file(broken)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        load_file(bad)


def test_chunks_respect_size_overlap_and_sections(tmp_path: Path) -> None:
    sentences = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    path = tmp_path / "long.md"
    path.write_text(f"# Long\n\n{sentences}\n\n## Other\n\nShort section.\n")
    (doc,) = load_path(path)
    chunks = split_document(doc, chunk_tokens=64, overlap_tokens=16)
    assert len(chunks) > 5
    assert all(estimate_tokens(c.text) <= 64 for c in chunks)
    assert [c.id for c in chunks] == [f"{doc.id}:{i}" for i in range(len(chunks))]
    long_chunks = [c for c in chunks if c.heading == "Long"]
    for before, after in itertools.pairwise(long_chunks):
        assert before.text.split(". ")[-1].rstrip(".") in after.text  # overlap carried over
    assert chunks[-1].heading == "Long > Other"
    assert chunks[-1].text == "Short section."
    assert embedding_text(chunks[-1]).startswith("Long > Other\n")


def test_a_single_huge_word_run_is_cut_at_words(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text(" ".join(["word"] * 500))
    (doc,) = load_path(path)
    chunks = split_document(doc, chunk_tokens=50, overlap_tokens=0)
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 500


def test_a_long_table_is_cut_between_rows_only() -> None:
    from genai_factory.messages import Document
    from genai_factory.rag.splitting import split_document

    rows = [
        f"| `setting.number_{i}` | `GENAI_SETTING__NUMBER_{i}` | `{i * 1000}` | what setting {i} "
        f"does, in words. It is the {i}th |"
        for i in range(40)
    ]
    text = "# Settings\n\n| Setting | Env | Default | Meaning |\n|---|---|---|---|\n" + "\n".join(
        rows
    )
    doc = Document(id="d", source="s.md", title="S", text=text, content_hash="h")
    chunks = split_document(doc, chunk_tokens=120, overlap_tokens=20)
    assert len(chunks) > 3
    for chunk in chunks:
        for line in chunk.text.splitlines():
            assert line.startswith("|") and line.endswith("|"), line  # whole rows only
    assert all(any(row in c.text for c in chunks) for row in rows)
    # Every chunk starts with the table's header, once: its rows keep their column names.
    header = "| Setting | Env | Default | Meaning |\n|---|---|---|---|\n"
    assert all(c.text.startswith(header) and c.text.count("| Setting |") == 1 for c in chunks)


def test_a_short_table_and_prose_get_no_header() -> None:
    from genai_factory.messages import Document

    text = "# A\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + " ".join(["Words here."] * 80)
    doc = Document(id="d", source="s.md", title="S", text=text, content_hash="h")
    chunks = split_document(doc, chunk_tokens=60, overlap_tokens=10)
    assert len(chunks) > 2
    assert sum(c.text.count("| a | b |") for c in chunks) == 1
