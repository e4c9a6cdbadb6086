"""Every session store honours the ``SessionStore`` contract: in process, SQLite and Redis."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError, PermissionDenied, ServiceNotReady
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import (
    SUMMARY_PREFIX,
    SessionStore,
    SizeLimits,
    Summary,
    encode_message,
    stored_size,
)
from genai_factory.memory.redis_store import RedisSessionStore
from genai_factory.memory.registry import Limits, build_session_store, session_backend
from genai_factory.memory.sqlite_store import SqliteSessionStore
from genai_factory.memory.summary import SummarizingHistory
from genai_factory.messages import Message
from genai_factory.testing.fakes import FakeChatModel

from .conftest import REDIS_URL, Backend, redis_client


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


async def test_idle_sessions_expire_and_are_cleaned_up(backend: Backend) -> None:
    store = backend.store(ttl_s=2)
    await store.claim("s", "key1")
    await store.append("s", [Message.user("hi")])
    await backend.sleep(1.2)
    await store.append("s", [Message.assistant("hello")])  # used: alive for ttl_s more
    await backend.sleep(1.2)
    assert [m.content for m in await store.messages("s")] == ["hi", "hello"]
    await backend.sleep(2.5)
    await store.claim("other", "key1")  # a write, of another session, cleans up
    assert not await backend.holds(store, "s")
    assert await store.info("s") is None
    assert await store.history("s") is None
    assert await store.messages("s") == [] and await store.get("s") == []
    await store.claim("s", "key2")  # expired: a new owner may take the id


async def test_expired_sessions_are_not_returned_before_the_clean_up(backend: Backend) -> None:
    store = backend.store(ttl_s=1)
    await store.claim("s", "key1")
    await store.append("s", [Message.user("hi")])
    await backend.sleep(1.5)
    assert await store.info("s") is None
    assert await store.history("s") is None
    assert not await store.save_summary("s", "", Summary("x", 1), replaces=0)


async def test_the_message_limit_drops_the_oldest(backend: Backend) -> None:
    store = backend.store(max_messages=2, keep=SizeLimits(messages=5, bytes=100_000))
    for i in range(3):
        await store.append("s", [Message.user(f"q{i}"), Message.assistant(f"a{i}")])
    found = await store.history("s")
    assert found is not None
    assert [m.content for m in found.messages] == ["a0", "q1", "a1", "q2", "a2"]
    assert (found.start, found.end) == (1, 6)


async def test_the_byte_limit_drops_the_oldest_the_same_way_everywhere(backend: Backend) -> None:
    sized = [Message.user(f"m{i}" + "x" * 50) for i in range(5)]
    size = stored_size(encode_message(sized[0]))
    store = backend.store(keep=SizeLimits(messages=100, bytes=3 * size + size // 2))
    await store.append("s", sized[:2])
    await store.append("s", sized[2:])
    found = await store.history("s")
    assert found is not None
    assert [m.content[:2] for m in found.messages] == ["m2", "m3", "m4"]
    assert found.start == 2
    await store.append("s", [Message.user("y" * (4 * size))])  # larger than the limit alone
    found = await store.history("s")
    assert found is not None and found.messages == [] and found.start == 6
    await store.append("s", [sized[0]])
    assert [m.content[:2] for m in await store.messages("s")] == ["m0"]


async def test_the_summary_is_kept_with_the_session_and_leads_the_prompt(
    store: SessionStore,
) -> None:
    await store.claim("s", "key1")
    for i in range(3):
        await store.append("s", [Message.user(f"question {i}"), Message.assistant(f"answer {i}")])
    found = await store.history("s")
    assert found is not None and found.summary is None and found.generation
    assert await store.save_summary("s", found.generation, Summary("Ada asked", 2), replaces=0)
    found = await store.history("s")
    assert found is not None and found.summary == Summary("Ada asked", 2)
    prompt = await store.get("s")
    assert prompt[0] == Message.system(SUMMARY_PREFIX + "Ada asked")
    # The summary covers the first turn; the window (max_messages=4) holds the other two.
    assert [m.content for m in prompt[1:]] == ["question 1", "answer 1", "question 2", "answer 2"]
    assert len(await store.messages("s")) == 6  # the covered turns are still kept


async def test_a_summary_is_saved_only_over_the_one_it_was_made_from(store: SessionStore) -> None:
    await store.append("s", [Message.user("q"), Message.assistant("a")] * 3)
    found = await store.history("s")
    assert found is not None
    generation = found.generation
    assert await store.save_summary("s", generation, Summary("first", 2), replaces=0)
    assert not await store.save_summary("s", generation, Summary("stale", 4), replaces=0)
    assert not await store.save_summary("s", generation, Summary("not newer", 2), replaces=2)
    assert not await store.save_summary("s", "another", Summary("wrong", 4), replaces=2)
    assert not await store.save_summary("missing", generation, Summary("x", 1), replaces=0)
    assert await store.save_summary("s", generation, Summary("second", 4), replaces=2)
    found = await store.history("s")
    assert found is not None and found.summary == Summary("second", 4)


async def test_delete_forgets_the_summary_and_a_new_session_gets_a_new_generation(
    store: SessionStore,
) -> None:
    await store.claim("s", "key1")
    await store.append("s", [Message.user("q"), Message.assistant("a")])
    old = await store.history("s")
    assert old is not None
    assert await store.save_summary("s", old.generation, Summary("secret", 1), replaces=0)
    assert await store.delete("s")
    await store.claim("s", "key1")
    await store.append("s", [Message.user("again")])
    new = await store.history("s")
    assert new is not None and new.summary is None and new.start == 0
    assert new.generation != old.generation
    # A summary made from the deleted session cannot land in the new one.
    assert not await store.save_summary("s", old.generation, Summary("secret", 1), replaces=0)


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


async def test_registry_gives_every_backend_the_same_limits_and_wraps_for_summaries(
    tmp_path: Path,
) -> None:
    limits = {"max_session_messages": 12, "max_session_bytes": 4096, "ttl_s": 600}
    settings = _settings(tmp_path, memory=limits, service={"max_history_messages": 6})
    assert Limits.from_settings(settings) == Limits(6, 600, 600, SizeLimits(12, 4096))
    # Never fewer than the window and one more turn, so a turn leaving it can be summarised.
    narrow = _settings(tmp_path, memory={"max_session_messages": 3})
    assert Limits.from_settings(narrow).keep.messages == 8 + 2
    for name in ("memory", "sqlite", "redis"):
        chosen = {**limits, "backend": name, "redis_url": REDIS_URL}
        built = build_session_store(_settings(tmp_path, memory=chosen))
        assert getattr(built, "keep") == SizeLimits(12, 4096)  # noqa: B009
        assert getattr(built, "ttl_s") == 600  # noqa: B009
        await built.aclose()
    model = FakeChatModel()
    wrapped = build_session_store(_settings(tmp_path), model=model)
    assert isinstance(wrapped, SummarizingHistory) and wrapped.model is model
    assert isinstance(wrapped.inner, SqliteSessionStore)
    assert wrapped.options.max_tokens == 128
    plain = build_session_store(_settings(tmp_path, memory={"summaries": False}), model=model)
    assert isinstance(plain, SqliteSessionStore)


OLD_SQLITE_SCHEMA = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, owner TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE session_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, message TEXT NOT NULL
);
"""


async def test_a_sqlite_file_of_an_older_release_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3
    import time

    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE_SCHEMA)
        conn.execute("INSERT INTO sessions VALUES ('s', 'key1', ?, ?)", (time.time(),) * 2)
        conn.execute(
            "INSERT INTO session_messages (session_id, message) VALUES ('s', ?)",
            (encode_message(Message.user("from before")),),
        )
    store = SqliteSessionStore(path, keep=SizeLimits(messages=2, bytes=10_000))
    found = await store.history("s")
    assert found is not None and found.generation == "" and found.start == 0
    await store.append("s", [Message.user("q"), Message.assistant("a")])
    found = await store.history("s")
    assert found is not None and found.start == 1 and found.generation  # given one when used
    assert await store.save_summary("s", found.generation, Summary("older", 1), replaces=0)
    found = await store.history("s")
    assert found is not None and found.summary == Summary("older", 1)
    await store.aclose()
    again = SqliteSessionStore(path)  # opening an upgraded file again changes nothing
    assert await again.messages("s") == found.messages
    await again.aclose()


@pytest.mark.integration
async def test_a_redis_session_of_an_older_release_is_measured_on_its_first_append() -> None:
    prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
    store = RedisSessionStore(
        redis_client(), prefix=prefix, keep=SizeLimits(messages=100, bytes=90)
    )
    meta, log = store._keys("s")
    try:
        old = encode_message(Message.user("x" * 40))  # 68 bytes, not counted in a "bytes" field
        await store.client.hset(meta, mapping={"owner": "key1", "updated": 1.0})
        await store.client.rpush(log, old)
        found = await store.history("s")
        assert found is not None and found.generation == ""
        await store.append("s", [Message.user("new")])  # 68 + 31 bytes > 90: the old one goes
        found = await store.history("s")
        assert found is not None
        assert [m.content for m in found.messages] == ["new"] and found.start == 1
        assert found.generation  # given one when used
        assert await store.save_summary("s", found.generation, Summary("older", 1), replaces=0)
    finally:
        await store.client.delete(meta, log)
        await store.aclose()


@pytest.mark.integration
async def test_redis_sessions_survive_connections_closed_by_the_server(tmp_path: Path) -> None:
    # A Redis restart closes the pool's idle connections; the next claims must not fail on them.
    prefix = f"gftest:{uuid.uuid4().hex[:8]}:"
    settings = _settings(tmp_path, gateway={"redis_url": REDIS_URL, "redis_prefix": prefix})
    store = build_session_store(settings)
    assert isinstance(store, RedisSessionStore)
    killer = redis_client()
    try:
        await asyncio.gather(*(store.claim(f"s{i}", "key1") for i in range(16)))
        pool: Any = store.client.connection_pool
        for connection in pool._available_connections:
            host, port = connection._writer.get_extra_info("sockname")[:2]
            await killer.client_kill(f"{host}:{port}")
        assert pool._available_connections
        await asyncio.sleep(0.05)
        claimed = await asyncio.gather(*(store.claim(f"s{i}", "key1") for i in range(16)))
        assert all(info.owner == "key1" for info in claimed)
    finally:
        keys = [key async for key in killer.scan_iter(match=f"{prefix}*")]
        if keys:
            await killer.delete(*keys)
        await killer.aclose()
        await store.aclose()
