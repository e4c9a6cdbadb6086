"""Session history in a SQLite file: the embedded default, durable across restarts.

Tables ``sessions`` (id, owner, times, generation, the position of the first kept message, the
summary) and ``session_messages`` (one JSON message per row), in WAL mode so the CLI and the
service can share the file. Each call runs in a worker thread on one connection guarded by a lock,
never on the event loop; the file is opened on first use (older files get the new columns then).
A session keeps its newest messages within its size limits, and expired sessions are deleted when
touched and, on a write at most once a minute (or once per ``ttl_s`` if shorter), all at once.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from genai_factory.exceptions import ServiceNotReady
from genai_factory.memory.protocol import (
    DEFAULT_KEEP_BYTES,
    SessionHistory,
    SessionInfo,
    SizeLimits,
    Summary,
    check_owner,
    encode_message,
    keep_count,
    new_generation,
    prompt_history,
)
from genai_factory.messages import Message

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_sessions_updated ON sessions (updated_at);
CREATE TABLE IF NOT EXISTS session_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_session_messages ON session_messages (session_id, id);
"""
#: Columns added to ``sessions`` after its first release (added to older files when opened).
ADDED_COLUMNS = {
    "generation": "TEXT NOT NULL DEFAULT ''",
    "start": "INTEGER NOT NULL DEFAULT 0",
    "summary": "TEXT",
    "summary_through": "INTEGER NOT NULL DEFAULT 0",
}
#: Drop the oldest messages of a session until its newest fit the message and byte limits.
TRIM = """
DELETE FROM session_messages WHERE id IN (
    SELECT id FROM (
        SELECT id,
               ROW_NUMBER() OVER newest AS n,
               SUM(length(CAST(message AS BLOB))) OVER newest AS total
        FROM session_messages WHERE session_id = ?
        WINDOW newest AS (ORDER BY id DESC ROWS UNBOUNDED PRECEDING)
    ) WHERE n > ? OR total > ?
)
"""
#: Expired sessions are all swept at most this often (store clock seconds).
SWEEP_EVERY_S = 60.0


def _stamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _add_columns(conn: sqlite3.Connection) -> None:
    """Give a file made by an older release the columns of this one (idempotent)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    for name, declaration in ADDED_COLUMNS.items():
        if name in present:
            continue
        try:
            conn.execute(f"ALTER TABLE sessions ADD COLUMN {name} {declaration}")
        except sqlite3.OperationalError as exc:  # another process added it a moment ago
            if "duplicate column" not in str(exc):
                raise


class SqliteSessionStore:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in the SQLite file ``path``.

    ``keep`` defaults to :func:`~genai_factory.memory.protocol.keep_count` messages and
    :data:`~genai_factory.memory.protocol.DEFAULT_KEEP_BYTES` bytes.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int = 8,
        max_tokens: int = 600,
        keep: SizeLimits | None = None,
        ttl_s: float = 7 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.keep = keep or SizeLimits(keep_count(max_messages), DEFAULT_KEEP_BYTES)
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._swept = -math.inf
        self._sweep_every = min(SWEEP_EVERY_S, ttl_s)

    # -- plumbing -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                _add_columns(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE`` (writers queue here, not mid-transaction)."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            try:
                with self._transaction() as conn:
                    return work(conn)
            except (sqlite3.Error, OSError) as exc:
                raise ServiceNotReady(f"the session store is unavailable: {exc}") from exc

        return await asyncio.to_thread(guarded)

    def _forget(self, conn: sqlite3.Connection, session_id: str) -> bool:
        conn.execute("DELETE FROM session_messages WHERE session_id = ?", (session_id,))
        return conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 1

    def _expire(self, conn: sqlite3.Connection, session_id: str) -> None:
        cutoff = self._clock() - self.ttl_s
        row = conn.execute("SELECT updated_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is not None and row[0] < cutoff:
            self._forget(conn, session_id)

    def _ensure(self, conn: sqlite3.Connection, session_id: str, owner: str | None) -> None:
        now = self._clock()
        if now - self._swept >= self._sweep_every:
            self._sweep(conn)
            self._swept = now
        self._expire(conn, session_id)
        generation = new_generation()
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, owner, created_at, updated_at, generation) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, owner, now, now, generation),
        )
        # A session made by an older release has no generation until it is used.
        conn.execute(
            "UPDATE sessions SET updated_at = ?, generation = "
            "CASE WHEN generation = '' THEN ? ELSE generation END WHERE id = ?",
            (now, generation, session_id),
        )

    def _sweep(self, conn: sqlite3.Connection) -> None:
        cutoff = self._clock() - self.ttl_s
        conn.execute(
            "DELETE FROM session_messages WHERE session_id IN "
            "(SELECT id FROM sessions WHERE updated_at < ?)",
            (cutoff,),
        )
        conn.execute("DELETE FROM sessions WHERE updated_at < ?", (cutoff,))

    # -- the protocol -------------------------------------------------------------------------

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo:
        def work(conn: sqlite3.Connection) -> SessionInfo:
            self._ensure(conn, session_id, owner)
            row = conn.execute(
                "SELECT owner, updated_at FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            return SessionInfo(session_id, row[0], _stamp(row[1]))

        found = await self._run(work)
        check_owner(found, owner)
        return found

    async def info(self, session_id: str) -> SessionInfo | None:
        def work(conn: sqlite3.Connection) -> SessionInfo | None:
            self._expire(conn, session_id)
            row = conn.execute(
                "SELECT owner, updated_at FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            return None if row is None else SessionInfo(session_id, row[0], _stamp(row[1]))

        return await self._run(work)

    async def history(self, session_id: str) -> SessionHistory | None:
        def work(conn: sqlite3.Connection) -> tuple[tuple[str, int, str | None, int], list[str]]:
            self._expire(conn, session_id)
            row = conn.execute(
                "SELECT generation, start, summary, summary_through FROM sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
            rows = conn.execute(
                "SELECT message FROM session_messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
            return row, [r[0] for r in rows]

        row, raw = await self._run(work)
        if row is None:
            return None
        generation, start, text, through = row
        summary = Summary(text, through) if text is not None else None
        messages = [Message.model_validate_json(item) for item in raw]
        return SessionHistory(messages, start, summary, generation)

    async def messages(self, session_id: str) -> list[Message]:
        found = await self.history(session_id)
        return [] if found is None else found.messages

    async def get(self, session_id: str) -> list[Message]:
        return prompt_history(
            await self.history(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        rows = [(session_id, encode_message(m)) for m in messages]
        keep = self.keep

        def work(conn: sqlite3.Connection) -> None:
            self._ensure(conn, session_id, None)
            conn.executemany(
                "INSERT INTO session_messages (session_id, message) VALUES (?, ?)", rows
            )
            dropped = conn.execute(TRIM, (session_id, keep.messages, keep.bytes)).rowcount
            if dropped:
                conn.execute(
                    "UPDATE sessions SET start = start + ? WHERE id = ?", (dropped, session_id)
                )

        await self._run(work)

    async def save_summary(
        self, session_id: str, generation: str, summary: Summary, *, replaces: int
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            self._expire(conn, session_id)
            updated = conn.execute(
                "UPDATE sessions SET summary = ?, summary_through = ? "
                "WHERE id = ? AND generation = ? AND summary_through = ? AND ? > summary_through",
                (summary.text, summary.through, session_id, generation, replaces, summary.through),
            )
            return updated.rowcount == 1

        return await self._run(work)

    async def delete(self, session_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            return self._forget(conn, session_id)

        return await self._run(work)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)
