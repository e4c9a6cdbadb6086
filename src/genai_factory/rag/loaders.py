"""Document loaders: markdown and plain-text files and directories, with stable ids and metadata.

A document's id derives from its path relative to the root it was loaded from, so editing a file
keeps its id (and re-ingesting replaces its chunks), while its ``content_hash`` changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.messages import Document

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst"})
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_id(root_name: str, relative: str) -> str:
    digest = hashlib.sha256(f"{root_name}/{relative}".encode()).hexdigest()[:16]
    return f"doc_{digest}"


def _title(text: str, path: Path) -> str:
    match = _HEADING.search(text)
    if match:
        return match.group(1).strip()
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def load_file(path: Path, *, root: Path | None = None) -> Document:
    """Load one text or markdown file. Raises :class:`InvalidRequestError` for other types."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise InvalidRequestError(
            f"unsupported file type {path.suffix or '(none)'} for {path}; "
            f"supported: {', '.join(sorted(TEXT_SUFFIXES))}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"{path} is not UTF-8 text") from exc
    base = root if root is not None else path.parent
    relative = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
    stat = path.stat()
    return Document(
        id=document_id(base.name, relative),
        text=text,
        title=_title(text, path),
        source=relative,
        content_hash=content_hash(text),
        metadata={
            "path": str(path),
            "modified": datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat(),
            "bytes": stat.st_size,
            "type": path.suffix.lower().lstrip("."),
        },
    )


def iter_files(path: Path) -> Iterator[Path]:
    """The loadable files under ``path`` (or ``path`` itself), sorted, hidden ones skipped."""
    if path.is_file():
        yield path
        return
    for candidate in sorted(path.rglob("*")):
        hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
        if candidate.is_file() and not hidden and candidate.suffix.lower() in TEXT_SUFFIXES:
            yield candidate


def load_path(path: Path) -> list[Document]:
    """Every loadable document under a file or directory."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise NotFoundError(f"no such file or directory: {path}")
    root = path if path.is_dir() else path.parent
    return [load_file(file, root=root) for file in iter_files(path) if file.stat().st_size > 0]
