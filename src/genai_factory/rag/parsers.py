"""Turn file bytes into text the splitter understands: Markdown-style headings and blank-line paragraphs.

* Markdown, reStructuredText and plain text are decoded as UTF-8 and kept as they are.
* HTML is parsed with the standard library: ``<h1>``–``<h6>`` become ``#`` headings, block elements
  end paragraphs, ``<pre>`` stays a fenced block, ``<script>``/``<style>``/``<nav>`` are dropped.
* PDF text is extracted page by page with pypdf; pages are separated by blank lines.

Every parser returns :class:`ParsedText` (text, an optional title, extra metadata) or raises
:class:`UnreadableDocument` for content it cannot read (both are
:class:`InvalidRequestError` s); an unknown suffix raises :class:`UnsupportedFileType`.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from genai_factory.exceptions import UnreadableDocument, UnsupportedFileType

TEXT_TYPES = {".md": "md", ".markdown": "md", ".txt": "txt", ".rst": "rst"}
HTML_TYPES = {".html": "html", ".htm": "html"}
PDF_TYPES = {".pdf": "pdf"}
SUPPORTED_SUFFIXES = frozenset({*TEXT_TYPES, *HTML_TYPES, *PDF_TYPES})

_BLOCKS = frozenset(
    {"p", "div", "section", "article", "li", "ul", "ol", "table", "tr", "blockquote", "br", "hr"}
    | {"header", "footer", "main", "dd", "dt", "figure", "figcaption", "td", "th"}
)
_SKIPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg", "head"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


@dataclass
class ParsedText:
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def file_type(name: str) -> str:
    """The short type name (``md``, ``txt``, ``rst``, ``html``, ``pdf``) of a file name."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for table in (TEXT_TYPES, HTML_TYPES, PDF_TYPES):
        if suffix in table:
            return table[suffix]
    raise UnsupportedFileType(
        f"unsupported file type {suffix or '(none)'} for {name}; "
        f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
    )


def parse_bytes(name: str, data: bytes) -> ParsedText:
    """Parse the content of a file called ``name``."""
    kind = file_type(name)
    if kind == "pdf":
        return parse_pdf(data, name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"{name} is not UTF-8 text") from exc
    if kind == "html":
        return parse_html(text)
    return ParsedText(text=text)


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML page as Markdown-style blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "pre":
            self._pre += 1
            self.parts.append("\n\n```\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self.parts.append("\n```\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data if self._pre else _SPACES.sub(" ", data.replace("\n", " ")))


def parse_html(html: str) -> ParsedText:
    """Visible text of an HTML document with its headings and paragraphs."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    blocks = [block.strip() for block in _BLANKS.split("".join(parser.parts))]
    text = "\n\n".join(block for block in blocks if block)
    title = _SPACES.sub(" ", parser.title).strip() or None
    return ParsedText(text=text, title=title)


#: Bounds on one PDF: decompressed bytes per stream, extracted characters, pages, and seconds.
#: A small file can inflate to gigabytes (a "decompression bomb"); past a bound it is refused.
PDF_MAX_STREAM_BYTES = 16_000_000
PDF_MAX_CHARS = 5_000_000
PDF_MAX_PAGES = 5_000
PDF_MAX_SECONDS = 30.0


def parse_pdf(data: bytes, name: str = "document.pdf") -> ParsedText:
    """The text of every page of a PDF (no OCR: scanned pages give no text).

    Raises:
        UnreadableDocument: the file is not a readable PDF, or it exceeds one of the bounds above.
    """
    from pypdf import Configuration, PdfReader, apply_configuration
    from pypdf.errors import PyPdfError

    limits = Configuration(
        maximum_declared_stream_length=PDF_MAX_STREAM_BYTES,
        zlib_maximum_output_length=PDF_MAX_STREAM_BYTES,
        lzw_maximum_output_length=PDF_MAX_STREAM_BYTES,
        run_length_maximum_output_length=PDF_MAX_STREAM_BYTES,
        array_based_stream_maximum_output_length=PDF_MAX_STREAM_BYTES,
    )
    try:
        with apply_configuration(limits):  # per call (a context variable), not process-wide
            reader = PdfReader(io.BytesIO(data))
            pages = _pdf_pages(reader, name)
            info = reader.metadata
            title = str(info.title).strip() if info is not None and info.title else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise UnreadableDocument(f"{name} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(_SPACES.sub(" ", page) for page in pages if page)
    return ParsedText(text=text, title=title or None, metadata={"pages": len(pages)})


def _pdf_pages(reader: Any, name: str) -> list[str]:
    if len(reader.pages) > PDF_MAX_PAGES:
        raise UnreadableDocument(f"{name} has more than {PDF_MAX_PAGES} pages")
    deadline = time.monotonic() + PDF_MAX_SECONDS
    pages: list[str] = []
    total = 0
    for page in reader.pages:
        text = (page.extract_text() or "").strip()
        total += len(text)
        if total > PDF_MAX_CHARS:
            raise UnreadableDocument(f"{name} holds more than {PDF_MAX_CHARS} characters of text")
        if time.monotonic() > deadline:
            raise UnreadableDocument(f"{name} took over {PDF_MAX_SECONDS:.0f} s to read")
        pages.append(text)
    return pages
