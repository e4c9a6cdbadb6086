from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from genai_factory.exceptions import UnreadableDocument, UnsupportedFileType
from genai_factory.rag.loaders import load_bytes, load_file, load_path
from genai_factory.rag.parsers import PDF_MAX_CHARS, parse_bytes, parse_html
from genai_factory.rag.splitting import sections
from genai_factory.testing.documents import compressed_pdf, minimal_pdf

PAGE = """<!doctype html><html><head><title> Cooling  guide </title>
<style>body { color: red }</style><script>var x = "hidden";</script></head>
<body><nav>Home | About</nav>
<h1>Cooling</h1><p>Fans move   air.
Heat sinks spread heat.</p>
<h2>Liquid</h2><p>Pumps circulate <b>coolant</b> &amp; water.</p>
<pre>pump --speed 3
  --quiet</pre>
<ul><li>One</li><li>Two</li></ul>
</body></html>"""


def test_html_keeps_headings_paragraphs_and_code_and_drops_chrome() -> None:
    parsed = parse_html(PAGE)
    assert parsed.title == "Cooling guide"
    assert "hidden" not in parsed.text and "Home | About" not in parsed.text
    assert "color: red" not in parsed.text
    assert "Fans move air. Heat sinks spread heat." in parsed.text
    assert "coolant & water" in parsed.text
    assert "```\npump --speed 3\n  --quiet\n```" in parsed.text
    found = sections(parsed.text)
    assert [s.heading for s in found] == ["Cooling", "Cooling > Liquid"]
    assert "One" in found[1].paragraphs[-2] and "Two" in found[1].paragraphs[-1]


def test_html_file_loads_with_metadata(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    (doc,) = load_path(tmp_path)
    assert doc.title == "Cooling guide"
    assert doc.metadata["type"] == "html"
    assert doc.metadata["path"].endswith("page.html")
    assert doc.metadata["modified"].endswith("+00:00")
    assert len(doc.content_hash) == 64


def test_pdf_pages_become_paragraphs_with_title_and_page_count(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(
        minimal_pdf([["Quarterly report", "Sales grew."], ["Costs fell."]], title="Q3")
    )
    doc = load_file(path)
    assert doc.title == "Q3"
    assert doc.metadata["pages"] == 2 and doc.metadata["type"] == "pdf"
    assert "Sales grew." in doc.text and "Costs fell." in doc.text
    assert doc.text.index("Sales") < doc.text.index("Costs")
    untitled = load_bytes("notes.pdf", minimal_pdf([["Just text"]]))
    assert untitled.title == "Notes"
    assert untitled.source == "upload/notes.pdf"


def test_uploads_have_stable_ids_by_name_and_hashes_by_content() -> None:
    first = load_bytes("faq.md", b"# FAQ\n\nAsk away.\n")
    again = load_bytes("dir/faq.md", b"# FAQ\n\nChanged.\n")
    assert first.id == again.id and first.content_hash != again.content_hash
    assert first.title == "FAQ"
    assert load_bytes("other.md", b"# FAQ\n\nAsk away.\n").content_hash == first.content_hash


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("empty.md", b"", UnreadableDocument),
        ("blank.txt", b"  \n\n ", UnreadableDocument),
        ("latin.txt", "caf\xe9".encode("latin-1"), UnreadableDocument),
        ("broken.pdf", b"%PDF-1.4 garbage", UnreadableDocument),
        ("textless.html", b"<html><script>x()</script></html>", UnreadableDocument),
        ("sheet.xlsx", b"PK\x03\x04", UnsupportedFileType),
        ("noextension", b"text", UnsupportedFileType),
    ],
)
def test_bad_uploads_raise_the_error_the_api_maps(name: str, data: bytes, error: type) -> None:
    with pytest.raises(error):
        load_bytes(name, data)


def test_directory_skips_unreadable_files_and_reports_them(tmp_path: Path) -> None:
    from genai_factory.rag.loaders import iter_documents

    (tmp_path / "good.md").write_text("# Good\n\nFine.\n")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "page.htm").write_text("<h1>Page</h1><p>Body.</p>")
    skipped: list[str] = []
    docs = list(iter_documents(tmp_path, skipped=skipped))
    assert sorted(d.source for d in docs) == ["good.md", "page.htm"]
    assert len(skipped) == 1 and "bad.pdf" in skipped[0]


def test_a_pdf_decompression_bomb_stays_bounded_in_time_and_memory() -> None:
    bomb = compressed_pdf([b"BT (" + b"A" * 200_000_000 + b") Tj ET"])  # 200 MB from ~200 kB
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    tracemalloc.start()
    try:
        parsed = parse_bytes("bomb.pdf", bomb)
    except UnreadableDocument:
        parsed = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - started < 20
    assert peak < 100_000_000  # the stream is never inflated whole
    assert parsed is None or len(parsed.text) <= PDF_MAX_CHARS


def test_a_small_pdf_stream_still_reads() -> None:
    parsed = parse_bytes("ok.pdf", compressed_pdf([b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET"]))
    assert parsed.metadata["pages"] == 1
