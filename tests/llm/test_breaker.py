"""CircuitBreakerModel: closed → open → half-open → closed or open again, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from genai_factory.exceptions import (
    CircuitOpen,
    InvalidRequestError,
    ModelRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.breaker import BreakerState, CircuitBreakerModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message
from genai_factory.testing.fakes import FakeChatModel

HELLO = [Message.user("hello")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Gated(ChatModel):
    """Call ``i`` answers ``replies[i]``; a call listed in ``held`` first waits for ``gates[i]``."""

    def __init__(self, replies: list[str | BaseException], held: tuple[int, ...] = ()) -> None:
        self.name = "gated"
        self.replies = replies
        self.held = set(held)
        self.gates = [asyncio.Event() for _ in replies]
        self.started = 0

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        index = self.started
        self.started += 1
        if index in self.held:
            await self.gates[index].wait()
        reply = self.replies[index]
        if isinstance(reply, BaseException):
            raise reply
        return ChatResponse(text=reply, model=self.name)


class BrokenStream(ChatModel):
    name = "broken-stream"

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        raise NotImplementedError

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="half ", model=self.name)
        raise ProviderUnavailable("stream broke")


async def collect(stream: AsyncIterator[ChatDelta], into: list[str]) -> None:
    async for delta in stream:
        into.append(delta.text)


def breaker(
    inner: ChatModel, clock: FakeClock, *, threshold: int = 3, cooldown: float = 10.0
) -> tuple[CircuitBreakerModel, list[BreakerState]]:
    changes: list[BreakerState] = []
    model = CircuitBreakerModel(
        inner,
        failure_threshold=threshold,
        cooldown_s=cooldown,
        clock=clock,
        on_state_change=lambda name, state: changes.append(state),
    )
    return model, changes


async def fail_times(model: ChatModel, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ProviderUnavailable):
            await model.chat(HELLO)


async def open_breaker(
    clock: FakeClock, replies: list[str | BaseException], *, threshold: int = 3
) -> tuple[CircuitBreakerModel, FakeChatModel, list[BreakerState]]:
    failures: list[str | BaseException] = [ProviderUnavailable("500")] * threshold
    inner = FakeChatModel([*failures, *replies])
    model, changes = breaker(inner, clock, threshold=threshold)
    await fail_times(model, threshold)
    assert model.state is BreakerState.OPEN
    return model, inner, changes


async def test_closed_breaker_passes_calls_through() -> None:
    inner = FakeChatModel(["one", "two"])
    model, changes = breaker(inner, FakeClock())
    assert (await model.chat(HELLO)).text == "one"
    assert (await model.chat(HELLO)).text == "two"
    assert model.state is BreakerState.CLOSED
    assert changes == []


async def test_opens_after_threshold_consecutive_failures() -> None:
    inner = FakeChatModel([ProviderUnavailable("500")] * 3)
    model, changes = breaker(inner, FakeClock(), threshold=3)
    await fail_times(model, 2)
    assert model.state is BreakerState.CLOSED
    await fail_times(model, 1)
    assert model.state is BreakerState.OPEN
    assert changes == [BreakerState.OPEN]


@pytest.mark.parametrize("error", [RateLimited("429"), ProviderTimeout("slow")])
async def test_every_provider_error_counts(error: Exception) -> None:
    inner = FakeChatModel([error, error])
    model, _ = breaker(inner, FakeClock(), threshold=2)
    for _ in range(2):
        with pytest.raises(type(error)):
            await model.chat(HELLO)
    assert model.state is BreakerState.OPEN


async def test_a_success_resets_the_count() -> None:
    down = ProviderUnavailable("500")
    inner = FakeChatModel([down, down, "ok", down, down])
    model, _ = breaker(inner, FakeClock(), threshold=3)
    await fail_times(model, 2)
    await model.chat(HELLO)
    await fail_times(model, 2)
    assert model.state is BreakerState.CLOSED


async def test_open_breaker_fails_fast_without_calling_the_backend() -> None:
    clock = FakeClock()
    model, inner, _ = await open_breaker(clock, ["never"])
    clock.advance(4.0)
    for _ in range(3):
        with pytest.raises(CircuitOpen) as raised:
            await model.chat(HELLO)
        assert raised.value.retry_after == pytest.approx(6.0)
        assert raised.value.provider == inner.name
    assert len(inner.calls) == 3


async def test_cooled_down_breaker_reads_half_open() -> None:
    clock = FakeClock()
    model, _, _ = await open_breaker(clock, [])
    clock.advance(9.9)
    assert model.state is BreakerState.OPEN
    clock.advance(0.1)
    assert model.state is BreakerState.HALF_OPEN


async def test_trial_success_closes_the_breaker() -> None:
    clock = FakeClock()
    model, _, changes = await open_breaker(clock, ["healthy", "still healthy"])
    clock.advance(10.0)
    assert (await model.chat(HELLO)).text == "healthy"
    assert model.state is BreakerState.CLOSED
    assert (await model.chat(HELLO)).text == "still healthy"
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_trial_failure_opens_the_breaker_for_another_cooldown() -> None:
    clock = FakeClock()
    model, inner, changes = await open_breaker(clock, [ProviderUnavailable("still down"), "ok"])
    clock.advance(10.0)
    with pytest.raises(ProviderUnavailable):
        await model.chat(HELLO)
    assert model.state is BreakerState.OPEN
    clock.advance(5.0)
    with pytest.raises(CircuitOpen):
        await model.chat(HELLO)
    assert len(inner.calls) == 4
    clock.advance(5.0)
    assert (await model.chat(HELLO)).text == "ok"
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


async def test_half_open_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    down = ProviderUnavailable("500")
    inner = Gated([down, down, "trial ok", "after"], held=(2,))
    model, _ = breaker(inner, clock, threshold=2)
    await fail_times(model, 2)
    clock.advance(10.0)

    trial = asyncio.create_task(model.chat(HELLO))
    await asyncio.sleep(0)
    assert inner.started == 3
    for _ in range(5):
        with pytest.raises(CircuitOpen):
            await model.chat(HELLO)
    assert inner.started == 3
    assert model.state is BreakerState.HALF_OPEN

    inner.gates[2].set()
    assert (await trial).text == "trial ok"
    assert model.state is BreakerState.CLOSED
    assert (await model.chat(HELLO)).text == "after"


@pytest.mark.parametrize(
    "error",
    [ModelRequestRejected("bad", status_code=400), InvalidRequestError("bad"), ValueError()],
)
async def test_the_callers_errors_do_not_count(error: Exception) -> None:
    inner = FakeChatModel([error] * 5)
    model, changes = breaker(inner, FakeClock(), threshold=2)
    for _ in range(5):
        with pytest.raises(type(error)):
            await model.chat(HELLO)
    assert model.state is BreakerState.CLOSED
    assert changes == []


async def test_a_rejected_trial_leaves_room_for_the_next_trial() -> None:
    clock = FakeClock()
    model, _, _ = await open_breaker(clock, [ModelRequestRejected("bad"), "ok"])
    clock.advance(10.0)
    with pytest.raises(ModelRequestRejected):
        await model.chat(HELLO)
    assert model.state is BreakerState.HALF_OPEN
    assert (await model.chat(HELLO)).text == "ok"
    assert model.state is BreakerState.CLOSED


async def test_a_stale_call_does_not_free_the_trial_slot() -> None:
    """A call admitted while closed that ends during the trial must not admit a second trial."""
    clock = FakeClock()
    replies: list[str | BaseException] = [
        ModelRequestRejected("stale"),
        ProviderUnavailable("500"),
        "trial ok",
        "a second trial",
    ]
    inner = Gated(replies, held=(0, 2))
    model, _ = breaker(inner, clock, threshold=1)
    stale = asyncio.create_task(model.chat(HELLO))
    await asyncio.sleep(0)
    await fail_times(model, 1)
    clock.advance(10.0)
    trial = asyncio.create_task(model.chat(HELLO))
    await asyncio.sleep(0)
    assert inner.started == 3

    inner.gates[0].set()
    with pytest.raises(ModelRequestRejected):
        await stale
    assert model.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        await model.chat(HELLO)
    inner.gates[2].set()
    assert (await trial).text == "trial ok"
    assert model.state is BreakerState.CLOSED


async def test_a_cancelled_trial_leaves_room_for_the_next_trial() -> None:
    clock = FakeClock()
    inner = Gated([ProviderUnavailable("500"), "never", "ok"], held=(1,))
    model, _ = breaker(inner, clock, threshold=1)
    await fail_times(model, 1)
    clock.advance(10.0)
    trial = asyncio.create_task(model.chat(HELLO))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert (await model.chat(HELLO)).text == "ok"
    assert model.state is BreakerState.CLOSED


async def test_open_breaker_fails_a_stream_fast() -> None:
    clock = FakeClock()
    model, inner, _ = await open_breaker(clock, ["never"])
    with pytest.raises(CircuitOpen):
        await collect(model.stream(HELLO), [])
    assert len(inner.calls) == 3


async def test_a_broken_stream_counts_as_a_failure() -> None:
    model, _ = breaker(BrokenStream(), FakeClock(), threshold=2)
    for _ in range(2):
        pieces: list[str] = []
        with pytest.raises(ProviderUnavailable):
            await collect(model.stream(HELLO), pieces)
        assert pieces == ["half "]
    assert model.state is BreakerState.OPEN


async def test_a_finished_stream_closes_a_half_open_breaker() -> None:
    clock = FakeClock()
    model, _, _ = await open_breaker(clock, ["streamed answer"])
    clock.advance(10.0)
    text = "".join([delta.text async for delta in model.stream(HELLO)])
    assert text == "streamed answer"
    assert model.state is BreakerState.CLOSED


async def test_a_stream_abandoned_early_frees_the_trial_slot() -> None:
    clock = FakeClock()
    model, _, _ = await open_breaker(clock, ["a long streamed answer", "next"])
    clock.advance(10.0)
    stream = model.stream(HELLO)
    first = await anext(stream)
    assert first.text == "a "
    await stream.aclose()  # type: ignore[attr-defined]
    assert model.state is BreakerState.HALF_OPEN
    assert (await model.chat(HELLO)).text == "next"
    assert model.state is BreakerState.CLOSED


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreakerModel(FakeChatModel(), failure_threshold=0)
