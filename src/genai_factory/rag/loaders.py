"""Document loaders: Markdown, text, reStructuredText, HTML and PDF files, directories and uploads.

A document's id derives from where it came from (its path relative to the root it was loaded from, or
``upload/<file name>``), so editing a file keeps its id and re-ingesting replaces its chunks, while
its ``content_hash`` (SHA-256 of the extracted text) changes. Metadata: ``path``, ``modified`` (ISO
8601, UTC), ``bytes``, ``type`` and, for PDFs, ``pages``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from genai_factory.exceptions import InvalidRequestError, NotFoundError, UnreadableDocument
from genai_factory.messages import Document
from genai_factory.rag.parsers import SUPPORTED_SUFFIXES, file_type, parse_bytes

#: Kept for callers of the first version; every suffix :func:`load_file` accepts.
TEXT_SUFFIXES = SUPPORTED_SUFFIXES
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_id(root_name: str, relative: str) -> str:
    digest = hashlib.sha256(f"{root_name}/{relative}".encode()).hexdigest()[:16]
    return f"doc_{digest}"


def _title(text: str, name: str, parsed_title: str | None) -> str:
    if parsed_title:
        return parsed_title
    match = _HEADING.search(text)
    if match:
        return match.group(1).strip()
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.replace("-", " ").replace("_", " ").strip().capitalize()


def build_document(
    name: str, data: bytes, *, doc_id: str, source: str, modified: datetime | None = None
) -> Document:
    """A document from a file's bytes. Raises :class:`UnreadableDocument` when it holds no text."""
    if not data.strip():
        raise UnreadableDocument(f"{name} is empty")
    parsed = parse_bytes(name, data)
    if not parsed.text.strip():
        raise UnreadableDocument(f"{name} holds no text")
    stamp = modified or datetime.now(tz=UTC)
    return Document(
        id=doc_id,
        text=parsed.text,
        title=_title(parsed.text, name, parsed.title),
        source=source,
        content_hash=content_hash(parsed.text),
        metadata={
            "modified": stamp.isoformat(),
            "bytes": len(data),
            "type": file_type(name),
            **parsed.metadata,
        },
    )


def load_bytes(name: str, data: bytes) -> Document:
    """An uploaded file. Its id derives from the file name: uploading it again replaces it."""
    clean = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    return build_document(
        clean, data, doc_id=document_id("upload", clean), source=f"upload/{clean}"
    )


def load_file(path: Path, *, root: Path | None = None) -> Document:
    """Load one supported file. Raises :class:`InvalidRequestError` for other types."""
    file_type(path.name)
    base = root if root is not None else path.parent
    relative = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
    stat = path.stat()
    document = build_document(
        path.name,
        path.read_bytes(),
        doc_id=document_id(base.name, relative),
        source=relative,
        modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
    )
    document.metadata["path"] = str(path)
    return document


def iter_files(path: Path) -> Iterator[Path]:
    """The loadable files under ``path`` (or ``path`` itself), sorted, hidden ones skipped."""
    if path.is_file():
        yield path
        return
    for candidate in sorted(path.rglob("*")):
        hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
        if candidate.is_file() and not hidden and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
            yield candidate


def iter_documents(path: Path, *, skipped: list[str] | None = None) -> Iterator[Document]:
    """Every loadable document under a file or directory, one at a time.

    Empty files are skipped. In a directory, a file that cannot be read (a broken PDF, a text file
    that is not UTF-8) is skipped too and its message appended to ``skipped``; a single file given
    directly raises :class:`InvalidRequestError` instead.
    """
    path = path.expanduser().resolve()
    if not path.exists():
        raise NotFoundError(f"no such file or directory: {path}")
    root = path if path.is_dir() else path.parent
    for file in iter_files(path):
        if file.stat().st_size == 0:
            continue
        try:
            yield load_file(file, root=root)
        except InvalidRequestError as exc:
            if path.is_file():
                raise
            if skipped is not None:
                skipped.append(exc.message)


def load_path(path: Path) -> list[Document]:
    """Every loadable document under a file or directory."""
    return list(iter_documents(path))
