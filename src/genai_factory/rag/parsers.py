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


def parse_pdf(data: bytes, name: str = "document.pdf") -> ParsedText:
    """The text of every page of a PDF (no OCR: scanned pages give no text)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"{name} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(_SPACES.sub(" ", page) for page in pages if page)
    return ParsedText(text=text, title=title or None, metadata={"pages": len(pages)})
