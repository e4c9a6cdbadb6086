"""The OpenAI-compatible API, driven by the official ``openai`` client against a real server.

The service runs under uvicorn in a background thread on an ephemeral 127.0.0.1 port, so the
client goes through its own HTTP stack exactly as it would against api.openai.com.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from openai import AsyncOpenAI

from genai_factory.config import Settings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

MODEL = "fake-chat"
BACKUP = "fake-backup"
PRICING = {MODEL: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
REPLY = "Circuit breakers fail fast while a backend is down."


def settings_for(tmp_path: Path, *, auth: bool) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={
            "provider": "fake",
            "model": MODEL,
            "max_tokens": 64,
            "pricing": PRICING,
            "fallbacks": [{"provider": "fake", "model": BACKUP}],
        },
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        auth={"enabled": auth, "key_cache_s": 0},
        observability={"access_log": False},
    )


@dataclass
class Running:
    base_url: str
    settings: Settings
    model: FakeChatModel

    def client(self, api_key: str = "unused") -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0)


def serve(settings: Settings, model: FakeChatModel) -> Iterator[Running]:
    """The service under uvicorn on an ephemeral port, in a thread; stopped afterwards."""
    app = create_app(settings, model=model, embedder=FakeEmbedder())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        yield Running(base_url, settings, model)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def open_service(tmp_path: Path) -> Iterator[Running]:
    yield from serve(settings_for(tmp_path, auth=False), FakeChatModel([REPLY] * 10, name=MODEL))


@pytest.fixture
def keyed_service(tmp_path: Path) -> Iterator[tuple[Running, str, str]]:
    settings = settings_for(tmp_path, auth=True)
    record, plaintext = new_key("openai-client", budget_usd=5.0)

    async def add() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        await SqlKeyStore(engine).add(record)
        engine.dispose()

    asyncio.run(add())
    for running in serve(settings, FakeChatModel([REPLY] * 10, name=MODEL)):
        yield running, record.id, plaintext


QUESTION: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What does a circuit breaker do?"},
]


async def test_models_are_listed_and_retrieved(open_service: Running) -> None:
    async with open_service.client() as client:
        listed = await client.models.list()
        assert [m.id for m in listed.data] == [MODEL, BACKUP]
        assert (await client.models.retrieve(BACKUP)).id == BACKUP
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-5")


async def test_a_completion_in_openai_shape(open_service: Running) -> None:
    async with open_service.client() as client:
        completion = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=40, temperature=0.2
        )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-") and len(completion.id) == 9 + 32
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    sent = open_service.model.calls[0]
    assert [(m.role, m.content) for m in sent] == [(q["role"], q["content"]) for q in QUESTION]


async def test_the_client_streams_a_completion(open_service: Running) -> None:
    async with open_service.client() as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    # Role, answer, finish, usage: the output guards hold back ``safety.hold_chars`` (64)
    # characters until checked, so this short answer comes whole (test_chat_guards: in pieces).
    assert len(chunks) >= 4


async def test_the_raw_stream_ends_with_done(open_service: Running) -> None:
    body = {"model": MODEL, "messages": QUESTION, "stream": True}
    async with (
        httpx.AsyncClient(base_url=open_service.base_url) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][len("data: ") :])
    assert last["choices"][0]["delta"] == {} and "usage" in last


async def test_with_auth_the_client_needs_its_key_and_is_metered(
    keyed_service: tuple[Running, str, str],
) -> None:
    running, key_id, key = keyed_service
    async with running.client("not-a-key") as anonymous:
        with pytest.raises(openai.AuthenticationError) as refused:
            await anonymous.chat.completions.create(model=MODEL, messages=QUESTION)
    assert refused.value.code == "unauthenticated"
    async with running.client(key) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)
        stream = await client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert completion.choices[0].message.content == streamed == REPLY

    async def ledger() -> list[Any]:
        engine = await asyncio.to_thread(open_engine, running.settings.gateway_database_url())
        try:
            return await SqlSpendLedger(engine).entries(key_id)
        finally:
            engine.dispose()

    rows = await ledger()
    assert len(rows) == 2 and all(row.actual_usd > 0 for row in rows)
    assert completion.id == f"chatcmpl-{rows[-1].trace_id}"


async def test_errors_come_in_openai_shape(tmp_path: Path) -> None:
    model = FakeChatModel([ProviderUnavailable("backend down")], name=MODEL)
    for running in serve(settings_for(tmp_path, auth=False), model):
        async with running.client() as client:
            with pytest.raises(openai.NotFoundError) as missing:
                await client.chat.completions.create(model="gpt-5", messages=QUESTION)
            with pytest.raises(openai.APIStatusError) as failed:
                await client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
            with pytest.raises(openai.UnprocessableEntityError):
                await client.chat.completions.create(model=MODEL, messages=QUESTION, n=2)
    error = missing.value.body
    assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    assert error["code"] == "not_found" and "gpt-5" in error["message"]
    assert failed.value.status_code == 502
