"""``/v1/sessions`` over HTTP: the summary in ``GET``, and ``DELETE`` removing every trace of a
session (messages, summary, the texts of its interaction-log records), on SQLite and Redis."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.memory.protocol import SUMMARY_PREFIX
from genai_factory.memory.summary import SUMMARY_INSTRUCTIONS
from genai_factory.messages import Message
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

GENERATE = "/v1/assistant/generate"
REDIS_URL = "redis://127.0.0.1:6379/15"
SUMMARY = "The user asked three questions about tea."
ANSWER = "Noted, thank you."


def reply(messages: Sequence[Message]) -> str:
    return SUMMARY if messages[0].content == SUMMARY_INSTRUCTIONS else ANSWER


def settings_for(tmp_path: Path, backend: str, prefix: str) -> Settings:
    memory: dict[str, Any] = {"backend": backend}
    if backend == "redis":
        memory["redis_url"] = REDIS_URL
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat", "max_tokens": 32},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        observability={"access_log": False},
        auth={"enabled": True, "key_cache_s": 0},
        gateway={"redis_prefix": prefix},
        service={"max_history_messages": 2},
        memory=memory,
    )


def add_key(settings: Settings) -> str:
    record, plaintext = new_key("test")

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return f"Bearer {plaintext}"


def read_log(settings: Settings, trace_ids: list[str]) -> list[InteractionRecord]:
    async def work() -> list[InteractionRecord]:
        url = settings.interaction_database_url()
        log = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, url))
        try:
            found = [await log.get(trace_id) for trace_id in trace_ids]
        finally:
            await log.aclose()
        assert all(record is not None for record in found)
        return [record for record in found if record is not None]

    return asyncio.run(work())


def read_feedback(settings: Settings, trace_id: str) -> list[FeedbackRecord]:
    async def work() -> list[FeedbackRecord]:
        url = settings.interaction_database_url()
        log = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, url))
        try:
            return await log.feedback(trace_id)
        finally:
            await log.aclose()

    return asyncio.run(work())


def stored_anywhere(settings: Settings, prefix: str, session_id: str) -> bool:
    """Whether the session store still holds anything of the session."""
    if settings.memory.backend == "sqlite":
        with sqlite3.connect(settings.data_dir / "sessions.db") as conn:
            count = conn.execute(
                "SELECT (SELECT COUNT(*) FROM sessions WHERE id = ?)"
                " + (SELECT COUNT(*) FROM session_messages WHERE session_id = ?)",
                (session_id, session_id),
            ).fetchone()[0]
        return int(count) > 0

    async def keys() -> list[Any]:
        from redis.asyncio import Redis

        client: Redis = Redis.from_url(REDIS_URL)
        try:
            return [key async for key in client.scan_iter(match=f"{prefix}session:*")]
        finally:
            await client.aclose()

    return any(session_id in key.decode() for key in asyncio.run(keys()))


def wait_for(predicate: Any, what: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return found


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
    settings = settings_for(tmp_path, request.param, prefix)
    alice, bob = add_key(settings), add_key(settings)
    model = FakeChatModel([reply] * 100)
    with TestClient(create_app(settings, model=model, embedder=FakeEmbedder())) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, "the service is not ready")
        yield {
            "client": client,
            "settings": settings,
            "prefix": prefix,
            "model": model,
            "alice": {"authorization": alice},
            "bob": {"authorization": bob},
        }
    if request.param == "redis":
        asyncio.run(drop_keys(prefix))


async def drop_keys(prefix: str) -> None:
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def ask(world: dict[str, Any], query: str, session_id: str = "conv") -> str:
    body = {"query": query, "mode": "chat", "session_id": session_id}
    answered = world["client"].post(GENERATE, json=body, headers=world["alice"])
    assert answered.status_code == 200, answered.text
    return str(answered.json()["trace_id"])


def test_the_summary_is_shown_and_given_to_the_model(world: dict[str, Any]) -> None:
    client, alice = world["client"], world["alice"]
    for number in ("one", "two", "three"):
        ask(world, f"question {number} about tea")

    def summarised() -> dict[str, Any] | None:
        view: dict[str, Any] = client.get("/v1/sessions/conv", headers=alice).json()
        return view if view["summary_covers"] == 4 else None  # both turns out of the window

    view = wait_for(summarised, "the turns that left the window were not summarised")
    assert view["summary"] == SUMMARY
    assert view["messages"][0]["content"] == "question one about tea"  # still kept
    ask(world, "question four about tea")
    answering = [c for c in world["model"].calls if c[0].content != SUMMARY_INSTRUCTIONS]
    assert answering[-1][1] == Message.system(SUMMARY_PREFIX + SUMMARY)
    assert [m.content for m in answering[-1][2:]] == [
        "question three about tea",
        ANSWER,
        "question four about tea",
    ]


def test_delete_removes_every_trace_of_the_session(world: dict[str, Any]) -> None:
    client, settings = world["client"], world["settings"]
    alice, bob = world["alice"], world["bob"]
    traces = [ask(world, f"question {n} about my order 4411") for n in range(3)]
    other = ask(world, "a question in another conversation", session_id="other")
    rated = {"trace_id": traces[0], "rating": -1, "comment": "about my order 4411"}
    assert client.post("/v1/feedback", json=rated, headers=alice).status_code == 201
    wait_for(lambda: client.get("/v1/sessions/conv", headers=alice).json()["summary"], "summary")

    refused = client.delete("/v1/sessions/conv", headers=bob)
    assert refused.status_code == 403
    assert client.get("/v1/sessions/conv", headers=alice).status_code == 200  # untouched

    deleted = client.delete("/v1/sessions/conv", headers=alice)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": "conv", "interactions_erased": 3}
    assert client.get("/v1/sessions/conv", headers=alice).status_code == 404
    assert client.delete("/v1/sessions/conv", headers=alice).status_code == 404
    assert not stored_anywhere(settings, world["prefix"], "conv")

    records = read_log(settings, traces)
    for record in records:
        assert record.deleted_at is not None and record.session_id == "conv"
        assert record.request_text == "" and record.response_text == ""
        assert record.prompt_tokens > 0 and record.completion_tokens > 0  # accounting kept
        assert record.status == "ok" and record.key_id is not None
    assert [(f.rating, f.comment) for f in read_feedback(settings, traces[0])] == [(-1, None)]
    (kept,) = read_log(settings, [other])
    assert kept.deleted_at is None and kept.request_text == "a question in another conversation"

    ask(world, "a fresh start")  # the id can be used again, from nothing
    view = client.get("/v1/sessions/conv", headers=alice).json()
    assert view["summary"] is None and [m["content"] for m in view["messages"]] == [
        "a fresh start",
        ANSWER,
    ]
