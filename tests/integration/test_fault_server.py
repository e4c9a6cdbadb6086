"""The LLM resilience layer against a real fault-injecting OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
import pytest

from genai_factory.config import LLMSettings, ModelSettings, ResilienceSettings
from genai_factory.exceptions import (
    CircuitOpen,
    ModelRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.breaker import BreakerState, CircuitBreakerModel
from genai_factory.llm.fallback import FallbackModel
from genai_factory.llm.openai_compatible import OpenAICompatibleModel
from genai_factory.llm.registry import build_chat_model
from genai_factory.llm.retry import RetryingModel
from genai_factory.messages import ChatDelta, ChatOptions, Message
from genai_factory.rag.embedding import OpenAICompatibleEmbedder
from genai_factory.testing.fault_server import EMBEDDINGS_PATH, Fault, FaultServer

pytestmark = pytest.mark.integration

HELLO = [Message.user("hello")]
#: An open breaker answers without a network call or a retry: well under the retry backoff
#: (10 ms, 20 ms, ...) these tests configure, with room for a loaded CI machine.
FAST_FAIL_S = 0.025


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer(model="primary-model") as running:
        yield running


@pytest.fixture
async def backup_server() -> AsyncIterator[FaultServer]:
    async with FaultServer(model="backup-model") as running:
        yield running


@pytest.fixture
async def models() -> AsyncIterator[list[ChatModel]]:
    """Models to close after the test (each owns an httpx client)."""
    opened: list[ChatModel] = []
    yield opened
    for model in opened:
        await model.aclose()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings(
    base_url: str, *, fallbacks: Sequence[str] = (), timeout_s: float = 5.0, **resilience: Any
) -> LLMSettings:
    """Production-shaped settings with short waits; ``resilience`` overrides the knobs."""
    knobs = {"initial_backoff_s": 0.01, "max_backoff_s": 0.05, "deadline_s": 5.0, **resilience}
    return LLMSettings(
        provider="openai_compatible",
        base_url=base_url,
        model="primary-model",
        timeout_s=timeout_s,
        resilience=ResilienceSettings(**knobs),
        fallbacks=[
            ModelSettings(provider="openai_compatible", base_url=url, model="backup-model")
            for url in fallbacks
        ],
    )


def retrying(
    base_url: str, models: list[ChatModel], *, max_attempts: int = 3, deadline_s: float = 5.0
) -> RetryingModel:
    """A retried backend without jitter and with short backoffs, closed after the test."""
    inner = OpenAICompatibleModel(base_url, "primary-model", timeout_s=5.0)
    model = RetryingModel(
        inner, max_attempts=max_attempts, initial_backoff_s=0.01, jitter=0.0, deadline_s=deadline_s
    )
    models.append(model)
    return model


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` for up to two seconds."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met within 2 s")


async def collect(stream: AsyncIterator[ChatDelta], into: list[str]) -> None:
    async for delta in stream:
        into.append(delta.text)


async def timed_deltas(model: ChatModel) -> list[tuple[float, ChatDelta]]:
    return [(time.monotonic(), delta) async for delta in model.stream(HELLO)]


# --- acceptance criteria ------------------------------------------------------------------------


async def test_429_retry_after_is_waited_out_before_the_retry(models: list[ChatModel]) -> None:
    # This server runs in its own thread and loop, so its clock is independent of the client's.
    with FaultServer(model="primary-model") as threaded:
        threaded.script(Fault.status(429, retry_after=1), Fault.ok("after the wait"))
        model = retrying(threaded.base_url, models)
        response = await model.chat(HELLO)
        first, second = threaded.requests
    assert response.text == "after the wait"
    assert first.fault.status_code == 429
    assert first.responded_at is not None
    assert second.received_at - first.responded_at >= 1.0
    assert second.received_at - first.received_at < 1.5


async def test_429_without_retries_left_reports_retry_after(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.status(429, retry_after=7))
    with pytest.raises(RateLimited) as raised:
        await retrying(server.base_url, models, max_attempts=1).chat(HELLO)
    assert raised.value.retry_after == 7.0
    assert len(server.requests) == 1


async def test_breaker_opens_after_consecutive_500s_fails_fast_then_lets_one_trial_through(
    server: FaultServer, models: list[ChatModel]
) -> None:
    changes: list[BreakerState] = []
    cooldown = 0.3
    llm = settings(
        server.base_url, max_attempts=3, breaker_failure_threshold=3, breaker_cooldown_s=cooldown
    )
    model = build_chat_model(llm, on_breaker_change=lambda name, state: changes.append(state))
    models.append(model)
    server.default = Fault.status(500)

    with pytest.raises(ProviderUnavailable):  # three attempts, three 500s: the breaker opens
        await model.chat(HELLO)
    opened_at = time.monotonic()
    assert len(server.requests) == 3
    assert changes == [BreakerState.OPEN]

    for _ in range(5):
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):
            await model.chat(HELLO)
        assert time.perf_counter() - started < FAST_FAIL_S
    assert len(server.requests) == 3

    await asyncio.sleep(cooldown - (time.monotonic() - opened_at) + 0.02)
    server.script(Fault.ok("trial answer", delay_s=0.2))
    trial = asyncio.create_task(model.chat(HELLO))
    await until(lambda: len(server.requests) == 4)  # the trial is in flight at the server
    assert not trial.done()
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):
            await model.chat(HELLO)
        assert time.perf_counter() - started < FAST_FAIL_S
    assert len(server.requests) == 4

    assert (await trial).text == "trial answer"
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    server.default = Fault.ok("closed again")
    assert (await model.chat(HELLO)).text == "closed again"
    assert len(server.requests) == 5


async def test_failed_trial_reopens_the_breaker(
    server: FaultServer, models: list[ChatModel]
) -> None:
    inner = OpenAICompatibleModel(server.base_url, "primary-model", timeout_s=5.0)
    model = CircuitBreakerModel(inner, failure_threshold=2, cooldown_s=0.2)
    models.append(model)
    server.default = Fault.status(503)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await model.chat(HELLO)
    await asyncio.sleep(0.22)
    with pytest.raises(ProviderUnavailable):  # the one trial, and it fails
        await model.chat(HELLO)
    assert model.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await model.chat(HELLO)
    assert len(server.requests) == 3


async def test_fallback_answers_when_the_primary_refuses_connections(
    backup_server: FaultServer, models: list[ChatModel]
) -> None:
    moves: list[tuple[str, str]] = []
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    llm = settings(dead, fallbacks=[backup_server.base_url], max_attempts=2)
    model = build_chat_model(llm, on_fallback=lambda a, b, e: moves.append((a, b)))
    models.append(model)
    response = await model.chat(HELLO)
    assert response.model == "backup-model"
    assert response.text == "echo: hello"
    assert moves == [("primary-model", "backup-model")]
    assert len(backup_server.requests) == 1


async def test_fallback_answers_when_the_primary_always_503s(
    server: FaultServer, backup_server: FaultServer, models: list[ChatModel]
) -> None:
    server.default = Fault.status(503)
    model = build_chat_model(settings(server.base_url, fallbacks=[backup_server.base_url]))
    models.append(model)
    response = await model.chat(HELLO)
    assert response.model == "backup-model"
    assert len(server.requests) == 3  # the primary's retries came first
    deltas = [delta async for delta in model.stream(HELLO)]
    assert "".join(d.text for d in deltas) == "echo: hello"
    assert {d.model for d in deltas} == {"backup-model"}


async def test_no_call_exceeds_its_deadline_on_a_hanging_server(
    server: FaultServer, models: list[ChatModel]
) -> None:
    deadline = 0.5
    server.default = Fault.hang()
    model = retrying(server.base_url, models, deadline_s=deadline)
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout):
        await model.chat(HELLO)
    assert time.perf_counter() - started < deadline + 0.1
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout):
        await collect(model.stream(HELLO), [])
    assert time.perf_counter() - started < deadline + 0.1


async def test_per_attempt_timeouts_are_retried_within_the_deadline(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.default = Fault.hang()
    llm = settings(server.base_url, timeout_s=0.2, max_attempts=5, deadline_s=0.5)
    model = build_chat_model(llm)
    models.append(model)
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout):
        await model.chat(HELLO)
    assert time.perf_counter() - started < 0.5 + 0.1
    assert len(server.requests) >= 2


async def test_a_400_is_not_retried_and_does_not_fall_back(
    server: FaultServer, backup_server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.status(400, message="max_tokens is too large"))
    model = build_chat_model(settings(server.base_url, fallbacks=[backup_server.base_url]))
    models.append(model)
    assert isinstance(model, FallbackModel)
    with pytest.raises(ModelRequestRejected, match="max_tokens is too large") as raised:
        await model.chat(HELLO)
    assert raised.value.status_code == 400
    assert len(server.requests) == 1
    assert backup_server.requests == []


# --- more faults --------------------------------------------------------------------------------


async def test_a_reset_connection_is_retried(server: FaultServer, models: list[ChatModel]) -> None:
    server.script(Fault.reset(), Fault.ok("recovered"))
    response = await retrying(server.base_url, models).chat(HELLO)
    assert response.text == "recovered"
    assert len(server.requests) == 2


async def test_a_reset_without_retry_is_provider_unavailable(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.reset())
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        await retrying(server.base_url, models, max_attempts=1).chat(HELLO)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_server_errors_are_retried(
    server: FaultServer, models: list[ChatModel], status: int
) -> None:
    server.script(Fault.status(status), Fault.status(status), Fault.ok("third time lucky"))
    response = await retrying(server.base_url, models).chat(HELLO)
    assert response.text == "third time lucky"
    assert response.model == "primary-model"
    assert len(server.requests) == 3


async def test_bad_credentials_fall_back_without_retry(
    server: FaultServer, backup_server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.status(401, message="invalid api key"))
    model = build_chat_model(settings(server.base_url, fallbacks=[backup_server.base_url]))
    models.append(model)
    assert (await model.chat(HELLO)).model == "backup-model"
    assert len(server.requests) == 1


async def test_a_slow_stream_is_delivered_in_pieces(
    server: FaultServer, models: list[ChatModel]
) -> None:
    delay = 0.1
    server.script(Fault.slow_stream("one two three four", delay_s=delay))
    received = await timed_deltas(retrying(server.base_url, models))
    texts = [delta.text for _, delta in received]
    assert texts[:4] == ["one ", "two ", "three ", "four"]
    arrivals = [at for at, _ in received[:4]]
    finished = server.requests[0].responded_at
    assert finished is not None
    assert arrivals[0] < finished - 2 * delay  # the first piece came long before the last was sent
    assert arrivals[3] - arrivals[0] >= 2 * delay
    assert arrivals == sorted(arrivals)
    last = received[-1][1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert not last.usage.estimated
    assert last.usage.completion_tokens == 4
    assert server.requests[0].body["stream"] is True


async def test_a_stream_broken_midway_raises_after_partial_output_and_is_not_retried(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.broken_stream("alpha beta gamma delta", after=2), Fault.ok("retried"))
    pieces: list[str] = []
    with pytest.raises(ProviderUnavailable):
        await collect(retrying(server.base_url, models).stream(HELLO), pieces)
    assert pieces == ["alpha ", "beta "]
    assert len(server.requests) == 1


async def test_a_stream_broken_before_its_first_delta_is_retried(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.broken_stream("never seen", after=0), Fault.ok("second try"))
    deltas = [delta async for delta in retrying(server.base_url, models).stream(HELLO)]
    assert "".join(d.text for d in deltas) == "second try"
    assert len(server.requests) == 2


async def test_a_truncated_json_body_is_provider_unavailable(
    server: FaultServer, models: list[ChatModel]
) -> None:
    server.script(Fault.broken_stream("cut short", after=0))
    with pytest.raises(ProviderUnavailable):
        await retrying(server.base_url, models, max_attempts=1).chat(HELLO)


async def test_requests_carry_the_options(server: FaultServer, models: list[ChatModel]) -> None:
    model = OpenAICompatibleModel(server.base_url, "primary-model", api_key="sk-test")
    models.append(model)
    options = ChatOptions(max_tokens=17, temperature=0.0, stop=("\n",), seed=3)
    response = await model.chat([Message.system("terse"), *HELLO], options)
    assert response.usage.prompt_tokens > 0
    assert not response.usage.estimated
    request = server.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "primary-model"
    assert request.body["max_tokens"] == 17
    assert request.body["stop"] == ["\n"]
    assert request.body["seed"] == 3
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]


# --- embeddings ---------------------------------------------------------------------------------


async def test_embeddings_endpoint(server: FaultServer) -> None:
    embedder = OpenAICompatibleEmbedder(server.base_url, "embed-model", batch_size=2)
    try:
        vectors = await embedder.embed(["alpha", "beta", "alpha"])
        again = await embedder.embed(["beta"])
    finally:
        await embedder.aclose()
    assert vectors.shape == (3, server.embedding_dimension)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    assert np.allclose(vectors[1], again[0])
    assert embedder.dimension == server.embedding_dimension
    batches = server.requests_to(EMBEDDINGS_PATH)
    assert [r.body["input"] for r in batches] == [["alpha", "beta"], ["alpha"], ["beta"]]


async def test_embeddings_errors_are_translated(server: FaultServer) -> None:
    server.script(Fault.status(503), Fault.status(422))
    embedder = OpenAICompatibleEmbedder(server.base_url, "embed-model")
    try:
        with pytest.raises(ProviderUnavailable):
            await embedder.embed(["x"])
        with pytest.raises(ModelRequestRejected):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    assert len(server.requests) == 2
