"""A durable interaction log: no response (nor a stream's closing events) before its record is
committed. The service's log is held behind a gate here: with ``interaction_log_durable`` (the
default) a request is not answered while the gate is closed; without it, it is."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.observability.interactions import InteractionRecord
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

GENERATE = "/v1/assistant/generate"
CHAT = "/v1/chat/completions"
MODEL = "fake-chat"
#: How long a request must stay unanswered while its record cannot be committed.
HELD_S = 0.5


class HeldLog:
    """The service's interaction log, whose writes wait until the test opens ``gate``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()
        #: Trace ids committed, with the instant of their commit.
        self.stored: dict[str, float] = {}

    async def record(self, records: list[InteractionRecord]) -> None:
        await asyncio.to_thread(self.gate.wait)
        await self.inner.record(records)
        now = time.monotonic()
        self.stored.update((r.trace_id, now) for r in records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def settings_for(tmp_path: Path, durable: bool | None) -> Settings:
    observability: dict[str, Any] = {"access_log": False}
    if durable is not None:
        observability["interaction_log_durable"] = durable
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": MODEL},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        safety={"enabled": False},
        observability=observability,
    )


def serve(
    tmp_path: Path, durable: bool | None, model: FakeChatModel
) -> Iterator[tuple[TestClient, HeldLog]]:
    app = create_app(settings_for(tmp_path, durable), model=model, embedder=FakeEmbedder())
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        writer = app.state.telemetry.interactions
        held = HeldLog(writer.log)
        writer.log = held
        try:
            yield client, held
        finally:
            held.gate.set()


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[tuple[TestClient, HeldLog]]:
    yield from serve(tmp_path, None, FakeChatModel(["Pumps move water."] * 10, name=MODEL))


@pytest.fixture
def eager(tmp_path: Path) -> Iterator[tuple[TestClient, HeldLog]]:
    yield from serve(tmp_path, False, FakeChatModel(["Pumps move water."] * 10, name=MODEL))


def held_then_released(
    client: TestClient, held: HeldLog, path: str, body: dict[str, Any]
) -> tuple[httpx.Response, float]:
    """Send the request while the log is held: it must not be answered until the gate opens.
    Returns the response and the instant it was complete."""

    def send() -> tuple[httpx.Response, float]:
        response = client.post(path, json=body)
        return response, time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        pending: Future[tuple[httpx.Response, float]] = pool.submit(send)
        time.sleep(HELD_S)
        assert not pending.done(), "answered before its interaction record was committed"
        assert held.stored == {}
        held.gate.set()
        return pending.result(timeout=10)


def sse_data(text: str) -> list[Any]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_an_answer_is_sent_only_once_its_record_is_committed(
    durable: tuple[TestClient, HeldLog],
) -> None:
    client, held = durable
    response, at = held_then_released(client, held, GENERATE, {"query": "pumps?", "mode": "chat"})
    assert response.status_code == 200
    trace_id = response.json()["trace_id"]
    assert held.stored[trace_id] <= at


def test_a_stream_ends_only_once_its_record_is_committed(
    durable: tuple[TestClient, HeldLog],
) -> None:
    client, held = durable
    body = {"query": "pumps?", "mode": "chat", "stream": True}
    response, at = held_then_released(client, held, GENERATE, body)
    assert response.status_code == 200
    end = json.loads(sse_data(response.text)[-1])
    assert end["answer"] == "Pumps move water."
    assert held.stored[end["trace_id"]] <= at


def test_a_chat_completion_is_sent_only_once_its_record_is_committed(
    durable: tuple[TestClient, HeldLog],
) -> None:
    client, held = durable
    body = {"model": MODEL, "messages": [{"role": "user", "content": "pumps?"}]}
    response, at = held_then_released(client, held, CHAT, body)
    assert response.status_code == 200
    trace_id = response.json()["id"].removeprefix("chatcmpl-")
    assert held.stored[trace_id] <= at


def test_a_streamed_chat_completion_sends_done_only_once_its_record_is_committed(
    durable: tuple[TestClient, HeldLog],
) -> None:
    client, held = durable
    body = {"model": MODEL, "messages": [{"role": "user", "content": "pumps?"}], "stream": True}
    response, at = held_then_released(client, held, CHAT, body)
    assert response.status_code == 200
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    trace_id = json.loads(data[0])["id"].removeprefix("chatcmpl-")
    assert held.stored[trace_id] <= at


def test_an_error_is_answered_only_once_its_record_is_committed(tmp_path: Path) -> None:
    failing = FakeChatModel([ProviderUnavailable("down")] * 10, name=MODEL)
    for client, held in serve(tmp_path, None, failing):
        response, at = held_then_released(client, held, GENERATE, {"query": "q", "mode": "chat"})
        assert response.status_code == 502
        trace_id = response.json()["error"]["trace_id"]
        assert held.stored[trace_id] <= at


def test_without_durability_the_answer_does_not_wait_for_the_record(
    eager: tuple[TestClient, HeldLog],
) -> None:
    client, held = eager
    response = client.post(GENERATE, json={"query": "pumps?", "mode": "chat"})
    assert response.status_code == 200
    trace_id = response.json()["trace_id"]
    assert held.stored == {}  # answered while the write was still held
    held.gate.set()
    deadline = time.monotonic() + 5
    while trace_id not in held.stored:
        assert time.monotonic() < deadline
        time.sleep(0.01)
