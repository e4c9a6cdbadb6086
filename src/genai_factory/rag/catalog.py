"""``DocumentCatalog``: the record of which documents an index version holds.

A document is in the index exactly when its catalog row is: the row is written last, after the
chunks reached the vector store and the keyword index, and removed first on delete. So a crash mid-
ingest leaves at most orphan chunks of a document the catalog does not know, which search ignores
and the next ingest of that document replaces. The catalog also serves the documents API (id,
title, source, hash, chunks, metadata) and content-hash de-duplication.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from genai_factory.messages import Document

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS documents ("
    "id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, content_hash TEXT NOT NULL, "
    "chunks INTEGER NOT NULL, metadata TEXT NOT NULL, indexed_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash)",
)


class DocumentRecord(BaseModel):
    """One indexed document, as listed by ``GET /v1/documents``."""

    id: str
    title: str
    source: str
    content_hash: str
    chunks: int
    indexed_at: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentCatalog:
    """Indexed documents in a SQLite file (or in memory when ``path`` is ``None``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._ids: dict[str, int] = dict(self._db.execute("SELECT id, chunks FROM documents"))

    def _put_blocking(self, rows: Sequence[tuple[Document, int]]) -> None:
        now = datetime.now(tz=UTC).isoformat()
        values = [
            (d.id, d.title, d.source, d.content_hash, n, json.dumps(d.metadata, default=str), now)
            for d, n in rows
        ]
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)", values
            )
            self._ids.update((d.id, n) for d, n in rows)

    async def put(self, rows: Sequence[tuple[Document, int]]) -> None:
        """Record documents (with their chunk counts) as indexed."""
        if rows:
            await asyncio.to_thread(self._put_blocking, rows)

    def _delete_blocking(self, document_ids: Sequence[str]) -> int:
        marks = ",".join("?" * len(document_ids))
        with self._lock:
            cursor = self._db.execute(
                f"DELETE FROM documents WHERE id IN ({marks})",  # noqa: S608  only '?' placeholders
                list(document_ids),
            )
            for document_id in document_ids:
                self._ids.pop(document_id, None)
            return int(cursor.rowcount)

    async def delete(self, document_ids: Sequence[str]) -> int:
        if not document_ids:
            return 0
        return await asyncio.to_thread(self._delete_blocking, document_ids)

    def _select(self, where: str = "", args: Sequence[Any] = ()) -> list[DocumentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, source, content_hash, chunks, metadata, indexed_at "  # noqa: S608  the WHERE clause is built from fixed text and '?' placeholders
                f"FROM documents {where} ORDER BY source, id",
                list(args),
            ).fetchall()
        return [
            DocumentRecord(
                id=r[0],
                title=r[1],
                source=r[2],
                content_hash=r[3],
                chunks=r[4],
                metadata=json.loads(r[5]),
                indexed_at=r[6],
            )
            for r in rows
        ]

    async def records(self) -> list[DocumentRecord]:
        return await asyncio.to_thread(self._select)

    async def get(self, document_id: str) -> DocumentRecord | None:
        found = await asyncio.to_thread(self._select, "WHERE id = ?", (document_id,))
        return found[0] if found else None

    async def hashes(self) -> dict[str, str]:
        """Document id → content hash of every indexed document."""
        return {r.id: r.content_hash for r in await self.records()}

    def chunk_counts(self) -> dict[str, int]:
        """Document id → chunk count of every indexed document (a live view: do not modify it)."""
        return self._ids

    def contains(self, document_id: str) -> bool:
        return document_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        with self._lock:
            self._db.close()
