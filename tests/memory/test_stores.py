"""Every session store honours the ``SessionStore`` contract: in process, SQLite and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError, PermissionDenied, ServiceNotReady
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionStore
from genai_factory.memory.redis_store import RedisSessionStore
from genai_factory.memory.registry import build_session_store, session_backend
from genai_factory.memory.sqlite_store import SqliteSessionStore
from genai_factory.messages import Message

REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _redis_store(prefix: str, **limits: Any) -> RedisSessionStore:
    from redis.asyncio import Redis

    return RedisSessionStore(Redis.from_url(REDIS_URL), prefix=prefix, **limits)


async def _drop_prefix(prefix: str) -> None:
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    limits = {"max_messages": 4, "max_tokens": 1000}
    prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
    made: SessionStore
    if request.param == "memory":
        made = InMemoryHistory(**limits)
    elif request.param == "sqlite":
        made = SqliteSessionStore(tmp_path / "sessions.db", **limits)
    else:
        made = await _redis_store(prefix, **limits)
    yield made
    await made.aclose()
    if request.param == "redis":
        await _drop_prefix(prefix)


async def test_claim_creates_then_checks_the_owner(store: SessionStore) -> None:
    assert await store.info("s1") is None
    created = await store.claim("s1", "key1")
    assert created.owner == "key1"
    assert (await store.claim("s1", "key1")).owner == "key1"
    with pytest.raises(PermissionDenied):
        await store.claim("s1", "key2")
    await store.claim("s1", None)  # auth off may use any session
    info = await store.info("s1")
    assert info is not None and info.owner == "key1"


async def test_sessions_made_without_a_key_are_closed_to_keys(store: SessionStore) -> None:
    await store.claim("open", None)
    with pytest.raises(PermissionDenied):
        await store.claim("open", "key1")


async def test_concurrent_claims_give_the_session_to_exactly_one_key(store: SessionStore) -> None:
    results = await asyncio.gather(
        *(store.claim("race", f"key{i}") for i in range(6)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, PermissionDenied) for r in results if r not in winners)


async def test_append_keeps_the_newest_and_get_returns_the_window(store: SessionStore) -> None:
    for i in range(6):
        await store.append("s", [Message.user(f"question {i}"), Message.assistant(f"answer {i}")])
    kept = await store.messages("s")
    assert len(kept) == 8  # keep_count(4)
    assert kept[0].content == "question 2" and kept[-1].content == "answer 5"
    window = await store.get("s")
    assert [m.content for m in window] == ["question 4", "answer 4", "question 5", "answer 5"]
    assert await store.get("missing") == []


async def test_append_without_claim_makes_an_unowned_session(store: SessionStore) -> None:
    await store.append("s", [Message.user("hi")])
    info = await store.info("s")
    assert info is not None and info.owner is None


async def test_messages_round_trip_with_their_fields(store: SessionStore) -> None:
    message = Message(role="tool", content="42", tool_call_id="call_1")
    await store.append("s", [message])
    assert await store.messages("s") == [message]


async def test_delete_forgets_the_session(store: SessionStore) -> None:
    await store.claim("s", "key1")
    await store.append("s", [Message.user("hi")])
    assert await store.delete("s") is True
    assert await store.info("s") is None
    assert await store.messages("s") == []
    assert await store.delete("s") is False
    await store.claim("s", "key2")  # a forgotten id can be taken again


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_idle_sessions_expire(backend: str, tmp_path: Path) -> None:
    clock = Clock()
    store: SessionStore
    if backend == "memory":
        store = InMemoryHistory(ttl_s=60, clock=clock)
    else:
        store = SqliteSessionStore(tmp_path / "s.db", ttl_s=60, clock=clock)
    await store.claim("s", "key1")
    await store.append("s", [Message.user("hi")])
    clock.now += 30
    assert await store.messages("s")  # still alive, and touched
    clock.now += 61
    assert await store.info("s") is None
    await store.claim("s", "key2")  # expired: a new owner may take the id
    await store.aclose()


async def test_sqlite_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = SqliteSessionStore(tmp_path / "s.db")
    await first.claim("s", "key1")
    await first.append("s", [Message.user("remember me")])
    await first.aclose()
    second = SqliteSessionStore(tmp_path / "s.db")
    assert [m.content for m in await second.messages("s")] == ["remember me"]
    with pytest.raises(PermissionDenied):
        await second.claim("s", "key2")
    await second.aclose()


async def test_sqlite_errors_become_service_not_ready(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = SqliteSessionStore(blocker / "s.db")
    with pytest.raises(ServiceNotReady):
        await store.claim("s", None)


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg]


async def test_registry_chooses_the_backend(tmp_path: Path) -> None:
    assert session_backend(_settings(tmp_path)) == "sqlite"
    redis_gateway = _settings(tmp_path, gateway={"redis_url": REDIS_URL})
    assert session_backend(redis_gateway) == "redis"
    memory = _settings(tmp_path, memory={"backend": "memory", "max_tokens": 77})
    built = build_session_store(memory)
    assert isinstance(built, InMemoryHistory) and built.max_tokens == 77
    sqlite = build_session_store(_settings(tmp_path))
    assert isinstance(sqlite, SqliteSessionStore) and sqlite.path == tmp_path / "sessions.db"
    redis = build_session_store(redis_gateway)
    assert isinstance(redis, RedisSessionStore)
    await redis.aclose()
    with pytest.raises(ConfigurationError):
        build_session_store(_settings(tmp_path, memory={"backend": "redis"}))
