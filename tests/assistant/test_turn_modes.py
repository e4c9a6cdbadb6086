"""One turn in every mode: generate, SSE stream and the OpenAI-compatible stream answer alike.

For each route (chat, RAG, agent) the same question is asked three ways through the HTTP service,
with the guards on, reversible redaction and an admin key asking for ``reveal_pii``. Every mode
must report the same route, the same stage timings, the same safety report, the same revealed
answer and the same token accounting (from the answer itself, and from the interaction log).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import SafetySettings, Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.messages import Message
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interactions import InteractionRecord
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

SHOP_DB = Path(__file__).parents[2] / "examples" / "shop.db"
EMAIL = "jane.doe@example.com"
QUESTION = f"Please write to {EMAIL} about the circuit breaker and its cooldown."
#: The model only ever sees the placeholder; the admin caller gets the address back.
REPLY = "I will write to <EMAIL_ADDRESS_1> about the breaker cooldown [1]."
MODES = ("generate", "stream", "openai_stream")
ROUTES = ("chat", "rag", "agent")


def reply(messages: Sequence[Message]) -> str:
    """Answers every call: an agent decision when the agent asks, else the plain reply."""
    if any("final_answer" in m.content for m in messages if m.role == "system"):
        final = {"thought": "Done.", "action": "final_answer", "input": {"answer": REPLY}}
        return json.dumps(final)
    return REPLY


def settings_for(tmp_path: Path) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "breaker.md").write_text(
        "# Circuit breaker\n\nThe circuit breaker opens after five failures; the cooldown is 30 s.\n"
    )
    shop = tmp_path / "shop.db"
    shutil.copy(SHOP_DB, shop)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [docs], "min_score": 0.0},
        agents={"database": str(shop), "action_format": "json_schema"},
        safety={"reversible_redaction": True, "routes": redacting_routes()},
        observability={"access_log": False},
    )


def redacting_routes() -> dict[str, Any]:
    """The built-in routes, the agent's input redacting too (its default only flags), so every
    route redacts the same question."""
    routes = {name: route.model_dump() for name, route in SafetySettings().routes.items()}
    for guard in routes["agent"]["input"]:
        if guard["guard"] == "pii":
            guard["action"] = "redact"
    return routes


def admin_key(settings: Settings) -> str:
    record, plaintext = new_key("admin", admin=True)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return plaintext


def interaction(settings: Settings, trace_id: str) -> InteractionRecord:
    async def look() -> InteractionRecord | None:
        engine = await asyncio.to_thread(
            open_interaction_engine, settings.interaction_database_url()
        )
        try:
            return await SqlInteractionLog(engine).get(trace_id)
        finally:
            engine.dispose()

    deadline = time.monotonic() + 10
    while (found := asyncio.run(look())) is None:
        assert time.monotonic() < deadline, f"no interaction {trace_id}"
        time.sleep(0.02)
    return found


def sse(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((name, data))
    return events


def ask(client: TestClient, key: str, route: str, mode: str) -> tuple[str, str, dict[str, int]]:
    """Ask in ``mode``; returns the answer text, the trace id and the usage the client saw."""
    headers = {"Authorization": f"Bearer {key}"}
    if mode == "openai_stream":
        body = {
            "model": "fake-chat",
            "messages": [{"role": "user", "content": QUESTION}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "mode": route,
            "reveal_pii": True,
        }
        response = client.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 200, response.text
        chunks = [json.loads(data) for _, data in sse(response.text) if data != "[DONE]"]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        usage = next(c["usage"] for c in chunks if c.get("usage"))
        usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens")}
        return text, response.headers["x-trace-id"], usage
    body = {"query": QUESTION, "mode": route, "reveal_pii": True, "stream": mode == "stream"}
    response = client.post("/v1/assistant/generate", json=body, headers=headers)
    assert response.status_code == 200, response.text
    if mode == "stream":
        events = sse(response.text)
        streamed = "".join(json.loads(d)["text"] for name, d in events if name == "delta")
        answer = json.loads(events[-1][1])
        assert events[-1][0] == "end" and streamed == answer["answer"]
    else:
        answer = response.json()
    usage = {k: answer["usage"][k] for k in ("prompt_tokens", "completion_tokens")}
    return answer["answer"], answer["trace_id"], usage


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings, str]]:
    settings = settings_for(tmp_path_factory.mktemp("turn"))
    key = admin_key(settings)
    model = FakeChatModel([reply] * 100)
    with TestClient(create_app(settings, model=model, embedder=FakeEmbedder())) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.02)
        yield client, settings, key


@pytest.mark.parametrize("route", ROUTES)
def test_every_mode_answers_the_same_turn(
    route: str, service: tuple[TestClient, Settings, str]
) -> None:
    client, settings, key = service
    seen: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        text, trace_id, usage = ask(client, key, route, mode)
        record = interaction(settings, trace_id)
        seen[mode] = {
            "text": text,
            "route": record.route,
            "stages": sorted(record.stages_ms),
            "safety": record.safety,
            "usage": usage,
            "logged_usage": {
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
            },
        }
    first = seen["generate"]
    assert first["route"] == route
    assert EMAIL in first["text"] and "<EMAIL_ADDRESS" not in first["text"]  # revealed
    assert first["usage"] == first["logged_usage"] and first["usage"]["completion_tokens"] > 0
    assert {"input_guards", "output_guards", "routing"} <= set(first["stages"])
    assert ("agent" in first["stages"]) == (route == "agent")
    safety = first["safety"]
    assert safety["restored"] is True
    assert [v["guard"] for v in safety["input"]] == ["pii"]
    for mode in MODES[1:]:
        assert seen[mode] == first, mode
