"""Split documents into chunks that respect markdown headings and paragraphs.

A chunk never spans two sections. Within a section, paragraphs are packed up to ``chunk_tokens``;
a paragraph longer than that is cut between its table rows or list items, then at sentence ends,
and a sentence longer than that at words. A chunk that starts inside a table starts with the
table's header row (so its rows keep their column names).
Consecutive chunks of a section share about ``overlap_tokens`` of text. Chunk ids are
``<document id>:<position>``, stable for unchanged documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import Chunk, Document

_HEADING_LINE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
_FENCE = re.compile(r"^(```|~~~)")
#: A line that starts a table row or a list item.
_BLOCK_START = re.compile(r"^\s*(?:\||[-*+]\s|\d{1,3}[.)]\s)")
#: The rule under a markdown table's header row.
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: list[str]


def sections(text: str) -> list[Section]:
    """Markdown sections (heading path, paragraphs). Fenced code blocks stay whole."""
    result: list[Section] = []
    trail: list[str] = []
    paragraphs: list[str] = []
    current: list[str] = []
    in_fence = False

    def end_paragraph() -> None:
        if current and "".join(current).strip():
            paragraphs.append("\n".join(current).strip())
        current.clear()

    def end_section() -> None:
        end_paragraph()
        if paragraphs:
            result.append(Section(" > ".join(trail), list(paragraphs)))
        paragraphs.clear()

    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            current.append(line)
            continue
        heading = None if in_fence else _HEADING_LINE.match(line)
        if heading:
            end_section()
            level = len(heading.group(1))
            trail[:] = [*trail[: level - 1], heading.group(2).strip()]
        elif not line.strip() and not in_fence:
            end_paragraph()
        else:
            current.append(line)
    end_section()
    return result


def _blocks(paragraph: str) -> list[str]:
    """A paragraph's table rows and list items, each whole (a wrapped item keeps its lines); a
    paragraph without them is one block."""
    blocks: list[str] = []
    for line in paragraph.split("\n"):
        if not blocks or _BLOCK_START.match(line):
            blocks.append(line)
        else:
            blocks[-1] += "\n" + line
    return blocks


def table_header(paragraph: str) -> str:
    """The header of a paragraph that is a markdown table (its first row and the ``|---|`` rule
    under it), or ``""``."""
    lines = paragraph.split("\n")
    if len(lines) >= 2 and lines[0].lstrip().startswith("|") and _TABLE_RULE.match(lines[1]):
        return f"{lines[0]}\n{lines[1]}"
    return ""


def _pieces(paragraph: str, limit: int) -> list[tuple[str, str]]:
    """Cut a paragraph into ``(separator, piece)`` pairs of at most ``limit`` tokens: at table
    rows and list items first (a settings table is never cut inside a row when a row fits), then
    at sentence ends, then at words."""
    if estimate_tokens(paragraph) <= limit:
        return [("", paragraph)]
    pieces: list[tuple[str, str]] = []
    for block in _blocks(paragraph):
        separator = "\n"
        if estimate_tokens(block) <= limit:
            pieces.append((separator, block))
            continue
        for sentence in _SENTENCE_END.split(block):
            if estimate_tokens(sentence) <= limit:
                pieces.append((separator, sentence))
                separator = " "
                continue
            words: list[str] = []
            for word in sentence.split():
                if words and estimate_tokens(" ".join([*words, word])) > limit:
                    pieces.append((separator, " ".join(words)))
                    separator, words = " ", []
                words.append(word)
            if words:
                pieces.append((separator, " ".join(words)))
                separator = " "
    return pieces


def _join(window: list[tuple[str, str]]) -> str:
    """Pieces joined by their own separators (none before the first piece)."""
    return "".join(text if i == 0 else sep + text for i, (sep, text) in enumerate(window))


def _pack(
    pieces: list[tuple[str, str]], limit: int, overlap: int, headers: dict[int, str] | None = None
) -> list[str]:
    """Pack ``(separator, text)`` pieces into chunks; each new chunk repeats ~``overlap`` tokens.

    ``headers`` maps the index of a piece that is a table row to its table's header: a chunk
    that starts inside a table starts with the header, so its rows keep their column names.
    """
    headers = headers or {}
    chunks: list[str] = []
    window: list[tuple[str, str]] = []
    starts: list[int] = []  # the index of each piece of the window

    def text_of(window: list[tuple[str, str]], first: int) -> str:
        header = headers.get(first, "")
        return f"{header}\n{_join(window)}" if header else _join(window)

    for index, piece in enumerate(pieces):
        if window and estimate_tokens(_join([*window, piece])) > limit:
            chunks.append(text_of(window, starts[0]))
            carried: list[tuple[str, str]] = []
            for previous in reversed(window):
                if estimate_tokens(_join([previous, *carried])) > overlap:
                    break
                carried.insert(0, previous)
            window, starts = carried, starts[len(starts) - len(carried) :]
        window.append(piece)
        starts.append(index)
    if window:
        chunks.append(text_of(window, starts[0]))
    return chunks


def split_document(
    document: Document, *, chunk_tokens: int = 160, overlap_tokens: int = 32
) -> list[Chunk]:
    """The chunks of one document, in reading order."""
    chunks: list[Chunk] = []
    for section in sections(document.text):
        pieces: list[tuple[str, str]] = []
        headers: dict[int, str] = {}  # a table row's piece -> its table's header
        for para in section.paragraphs:
            header = table_header(para)
            for i, (separator, piece) in enumerate(_pieces(para, chunk_tokens)):
                if header and i >= 2:  # the header row and its rule are pieces 0 and 1
                    headers[len(pieces)] = header
                pieces.append(("\n\n" if i == 0 else separator, piece))
        for text in _pack(pieces, chunk_tokens, overlap_tokens, headers):
            chunks.append(
                Chunk(
                    id=f"{document.id}:{len(chunks)}",
                    document_id=document.id,
                    text=text,
                    position=len(chunks),
                    title=document.title,
                    source=document.source,
                    heading=section.heading,
                    metadata={**document.metadata, "content_hash": document.content_hash},
                )
            )
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path gives the text its context."""
    context = chunk.heading or chunk.title
    return f"{context}\n{chunk.text}" if context else chunk.text
