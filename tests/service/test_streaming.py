"""``POST /v1/assistant/generate`` with ``"stream": true``: server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine
from genai_factory.messages import ChatDelta, ChatOptions, Message
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

GENERATE = "/v1/assistant/generate"
PRICED = "fake-priced"


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of an event stream (``message`` when unnamed)."""
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, json.loads("\n".join(data))))
    return events


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "llm": {"provider": "fake", "model": "fake-chat"},
        "embeddings": {"provider": "fake"},
        "rag": {"knowledge_dirs": [], "min_score": 0.0},
        "observability": {"access_log": False},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def started(settings: Settings, model: FakeChatModel) -> Iterator[TestClient]:
    with TestClient(create_app(settings, model=model, embedder=FakeEmbedder())) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from started(settings_for(tmp_path), FakeChatModel(["The breaker fails fast."]))


def test_stream_sends_start_deltas_and_the_whole_answer_last(client: TestClient) -> None:
    response = client.post(GENERATE, json={"query": "breaker?", "mode": "chat", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "end"
    # A short answer may arrive as one delta: the output guards hold back the last 64 characters.
    assert set(names[1:-1]) == {"delta"} and len(names) >= 3
    start, end = events[0][1], events[-1][1]
    assert start["route"] == "chat" and start["citations"] == []
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text == end["answer"] == "The breaker fails fast."
    assert end["trace_id"] == start["trace_id"] == response.headers["x-trace-id"]
    assert end["usage"]["completion_tokens"] > 0 and end["latency_ms"] > 0
    assert set(end["stages_ms"]) == {"input_guards", "routing", "retrieval", "llm", "output_guards"}


def test_rag_stream_lists_sources_first_and_marks_the_cited_at_the_end(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "breaker.md").write_text("# Breaker\n\nThe circuit breaker fails fast when open.\n")
    settings = settings_for(tmp_path, rag={"knowledge_dirs": [docs], "min_score": 0.0})
    for client in started(settings, FakeChatModel(["It fails fast [1]."])):
        events = parse_sse(
            client.post(
                GENERATE, json={"query": "circuit breaker", "mode": "rag", "stream": True}
            ).text
        )
    start, end = events[0][1], events[-1][1]
    assert start["route"] == "rag"
    assert start["citations"][0]["source"] == "breaker.md"
    assert start["citations"][0]["cited"] is False
    assert end["citations"][0]["cited"] is True


def test_streamed_turns_join_the_session(tmp_path: Path) -> None:
    model = FakeChatModel(["first answer", "second answer"])
    for client in started(settings_for(tmp_path), model):
        for query in ("my name is Ada", "what is my name?"):
            body = {"query": query, "mode": "chat", "stream": True, "session_id": "s1"}
            assert client.post(GENERATE, json=body).status_code == 200
    # The default input guards redact PII (names included) before the model sees it.
    assert [m.content for m in model.calls[1][1:]] == [
        "my name is <PERSON>",
        "first answer",
        "what is my name?",
    ]


def test_errors_before_the_first_token_are_plain_http_errors(tmp_path: Path) -> None:
    model = FakeChatModel([ProviderUnavailable("backend down")])
    for client in started(settings_for(tmp_path), model):
        response = client.post(GENERATE, json={"query": "hi", "mode": "chat", "stream": True})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_unavailable"


class BreaksMidStream(FakeChatModel):
    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="Half an ans", model=self.name)
        raise ProviderUnavailable("connection reset mid-stream")


def test_errors_after_the_first_token_end_the_stream_with_an_error_event(tmp_path: Path) -> None:
    for client in started(settings_for(tmp_path), BreaksMidStream()):
        response = client.post(GENERATE, json={"query": "hi", "mode": "chat", "stream": True})
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["start", "delta", "error"]
    error = events[-1][1]["error"]
    assert error["code"] == "provider_unavailable"
    assert error["trace_id"] == response.headers["x-trace-id"]
    assert 'endpoint="generate",route="none",status="error"} 1.0' in metrics


def test_streams_are_metered_like_answers(tmp_path: Path) -> None:
    pricing = {PRICED: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
    settings = settings_for(
        tmp_path,
        llm={"provider": "fake", "model": PRICED, "pricing": pricing, "max_tokens": 20},
        auth={"enabled": True, "key_cache_s": 0},
    )
    rich, rich_key = new_key("rich", budget_usd=10.0)

    async def add_key() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        await SqlKeyStore(engine).add(rich)
        engine.dispose()

    asyncio.run(add_key())
    body = {"query": "hello", "mode": "chat", "stream": True}
    for client in started(settings, FakeChatModel(["Hello, glad to help."] * 3, name=PRICED)):
        ok = client.post(GENERATE, json=body, headers={"authorization": f"Bearer {rich_key}"})
        assert ok.status_code == 200
        end = parse_sse(ok.text)[-1][1]
        assert end["usage"]["cost_usd"] > 0

    async def ledger() -> list[Any]:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            return await SqlSpendLedger(engine).entries(rich.id)
        finally:
            engine.dispose()

    (row,) = asyncio.run(ledger())
    assert row.trace_id == end["trace_id"]
    assert row.actual_usd == pytest.approx(end["usage"]["cost_usd"])


def test_a_stream_over_budget_is_refused_before_it_starts(tmp_path: Path) -> None:
    pricing = {PRICED: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
    settings = settings_for(
        tmp_path,
        llm={"provider": "fake", "model": PRICED, "pricing": pricing, "max_tokens": 20},
        auth={"enabled": True, "key_cache_s": 0},
    )
    record, key = new_key("poor", budget_usd=0.0001)

    async def add_key() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        await SqlKeyStore(engine).add(record)
        engine.dispose()

    asyncio.run(add_key())
    for client in started(settings, FakeChatModel(["Hello, glad to help."] * 3, name=PRICED)):
        response = client.post(
            GENERATE,
            json={"query": "hello", "mode": "chat", "stream": True},
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "budget_exceeded"
