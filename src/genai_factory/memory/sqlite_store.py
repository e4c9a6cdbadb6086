"""Session history in a SQLite file: the embedded default, durable across restarts.

Tables ``sessions`` (id, owner, times) and ``session_messages`` (one JSON message per row), in WAL
mode so the CLI and the service can share the file. Each call runs in a worker thread on one
connection guarded by a lock, never on the event loop; the file is opened on first use. A session
keeps its newest messages only, and sessions idle past ``ttl_s`` are deleted now and then.
"""

from __future__ import annotations

import asyncio
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
    SessionInfo,
    check_owner,
    keep_count,
    recent_within_budget,
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
#: Expired sessions are swept after this many appends.
SWEEP_EVERY = 500


def _stamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


class SqliteSessionStore:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in the SQLite file ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int = 8,
        max_tokens: int = 600,
        ttl_s: float = 7 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._appends = 0

    # -- plumbing -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
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

    def _expire(self, conn: sqlite3.Connection, session_id: str) -> None:
        cutoff = self._clock() - self.ttl_s
        row = conn.execute("SELECT updated_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is not None and row[0] < cutoff:
            conn.execute("DELETE FROM session_messages WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def _ensure(self, conn: sqlite3.Connection, session_id: str, owner: str | None) -> None:
        self._expire(conn, session_id)
        now = self._clock()
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, owner, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (session_id, owner, now, now),
        )
        conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))

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

    async def messages(self, session_id: str) -> list[Message]:
        def work(conn: sqlite3.Connection) -> list[str]:
            self._expire(conn, session_id)
            rows = conn.execute(
                "SELECT message FROM session_messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
            return [row[0] for row in rows]

        return [Message.model_validate_json(raw) for raw in await self._run(work)]

    async def get(self, session_id: str) -> list[Message]:
        return recent_within_budget(
            await self.messages(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        rows = [(session_id, m.model_dump_json(exclude_defaults=True)) for m in messages]
        keep = keep_count(self.max_messages)
        self._appends += 1
        sweep = self._appends % SWEEP_EVERY == 0

        def work(conn: sqlite3.Connection) -> None:
            self._ensure(conn, session_id, None)
            conn.executemany(
                "INSERT INTO session_messages (session_id, message) VALUES (?, ?)", rows
            )
            conn.execute(
                "DELETE FROM session_messages WHERE session_id = ? AND id NOT IN ("
                "SELECT id FROM session_messages WHERE session_id = ? ORDER BY id DESC LIMIT ?)",
                (session_id, session_id, keep),
            )
            if sweep:
                self._sweep(conn)

        await self._run(work)

    def _sweep(self, conn: sqlite3.Connection) -> None:
        cutoff = self._clock() - self.ttl_s
        conn.execute(
            "DELETE FROM session_messages WHERE session_id IN "
            "(SELECT id FROM sessions WHERE updated_at < ?)",
            (cutoff,),
        )
        conn.execute("DELETE FROM sessions WHERE updated_at < ?", (cutoff,))

    async def delete(self, session_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM session_messages WHERE session_id = ?", (session_id,))
            return conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 1

        return await self._run(work)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)
