"""The session store backends, each made the same way for the parametrised tests."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionStore
from genai_factory.memory.redis_store import RedisSessionStore
from genai_factory.memory.sqlite_store import SqliteSessionStore

REDIS_URL = "redis://127.0.0.1:6379/15"
BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def redis_client() -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(REDIS_URL)


class Backend:
    """Makes stores of one backend (all sharing its storage) and looks into that storage.

    The in-process and SQLite stores run on a fake clock that :meth:`sleep` moves; Redis expires
    keys in real time, so there :meth:`sleep` really sleeps.
    """

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.clock = Clock()
        self.path = tmp_path / "sessions.db"
        self.prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
        self.made: list[SessionStore] = []

    def store(self, **options: Any) -> SessionStore:
        made: SessionStore
        if self.name == "memory":
            made = InMemoryHistory(clock=self.clock, **options)
        elif self.name == "sqlite":
            made = SqliteSessionStore(self.path, clock=self.clock, **options)
        else:
            made = RedisSessionStore(redis_client(), prefix=self.prefix, **options)
        self.made.append(made)
        return made

    async def sleep(self, seconds: float) -> None:
        if self.name == "redis":
            await asyncio.sleep(seconds)
        else:
            self.clock.now += seconds

    async def holds(self, store: SessionStore, session_id: str) -> bool:
        """Whether the storage still holds anything of the session (without expiring it)."""
        if isinstance(store, InMemoryHistory):
            return session_id in store._sessions
        if isinstance(store, SqliteSessionStore):
            with sqlite3.connect(self.path) as conn:
                rows = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM sessions WHERE id = ?)"
                    " + (SELECT COUNT(*) FROM session_messages WHERE session_id = ?)",
                    (session_id, session_id),
                ).fetchone()[0]
            return int(rows) > 0
        assert isinstance(store, RedisSessionStore)
        meta, log = store._keys(session_id)
        return int(await store.client.exists(meta, log)) > 0

    async def aclose(self) -> None:
        for made in self.made:
            await made.aclose()
        if self.name == "redis":
            client = redis_client()
            try:
                keys = [key async for key in client.scan_iter(match=f"{self.prefix}*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    await made.aclose()


@pytest.fixture
async def store(backend: Backend) -> SessionStore:
    return backend.store(max_messages=4, max_tokens=1000)
