"""RetryingModel: what is retried, how long it waits, and that no call outlives its deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from genai_factory.exceptions import (
    CircuitOpen,
    ConfigurationError,
    InvalidRequestError,
    ModelRequestRejected,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.openai_compatible import parse_retry_after
from genai_factory.llm.retry import RetryingModel, is_retryable
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message
from genai_factory.testing.fakes import FakeChatModel

HELLO = [Message.user("hello")]


class RecordingSleep:
    """A sleep that returns at once and remembers every wait it was asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class PartialStream(ChatModel):
    """Streams ``pieces`` and then fails with ``error`` (or hangs when ``error`` is None)."""

    def __init__(self, pieces: list[str], error: BaseException | None) -> None:
        self.name = "partial"
        self.pieces = pieces
        self.error = error
        self.calls = 0

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        raise NotImplementedError

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        self.calls += 1
        for piece in self.pieces:
            yield ChatDelta(text=piece, model=self.name)
        if self.error is None:
            await asyncio.sleep(3600)
        else:
            raise self.error


class Hanging(ChatModel):
    name = "hanging"

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def retrying(
    inner: ChatModel,
    sleep: RecordingSleep,
    *,
    max_attempts: int = 3,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 8.0,
    deadline_s: float = 120.0,
) -> RetryingModel:
    """A retrying model without jitter whose waits are recorded, not slept."""
    return RetryingModel(
        inner,
        max_attempts=max_attempts,
        initial_backoff_s=initial_backoff_s,
        max_backoff_s=max_backoff_s,
        deadline_s=deadline_s,
        jitter=0.0,
        sleep=sleep,
    )


async def collect(stream: AsyncIterator[ChatDelta], into: list[str]) -> None:
    async for delta in stream:
        into.append(delta.text)


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("429"),
        ProviderUnavailable("503", status_code=503),
        ProviderTimeout("slow"),
    ],
)
async def test_transient_errors_are_retried(error: ProviderError) -> None:
    inner = FakeChatModel([error, "fine"])
    sleep = RecordingSleep()
    response = await retrying(inner, sleep).chat(HELLO)
    assert response.text == "fine"
    assert len(inner.calls) == 2
    assert sleep.waits == [0.1]


@pytest.mark.parametrize(
    "error",
    [
        ModelRequestRejected("bad request", status_code=400),
        InvalidRequestError("bad"),
        CircuitOpen("open", retry_after=3.0),
        ProviderError("bad credentials", status_code=401),
        ConfigurationError("no model"),
        ValueError("a bug"),
    ],
)
async def test_other_errors_are_raised_at_once(error: Exception) -> None:
    inner = FakeChatModel([error, "never"])
    sleep = RecordingSleep()
    with pytest.raises(type(error)) as raised:
        await retrying(inner, sleep).chat(HELLO)
    assert raised.value is error
    assert len(inner.calls) == 1
    assert sleep.waits == []


def test_is_retryable_names_the_transient_provider_errors() -> None:
    assert is_retryable(RateLimited("x"))
    assert is_retryable(ProviderTimeout("x"))
    assert is_retryable(ProviderUnavailable("x"))
    assert not is_retryable(CircuitOpen("x"))
    assert not is_retryable(ProviderError("x"))
    assert not is_retryable(ModelRequestRejected("x"))


async def test_success_needs_no_wait() -> None:
    inner = FakeChatModel(["first time"])
    sleep = RecordingSleep()
    assert (await retrying(inner, sleep).chat(HELLO)).text == "first time"
    assert sleep.waits == []


async def test_backoff_doubles_up_to_the_cap() -> None:
    errors = [ProviderUnavailable(f"down {i}") for i in range(4)]
    inner = FakeChatModel([*errors, "up"])
    sleep = RecordingSleep()
    model = retrying(inner, sleep, max_attempts=5, max_backoff_s=0.3)
    assert (await model.chat(HELLO)).text == "up"
    assert sleep.waits == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_jitter_shortens_the_wait_by_at_most_its_fraction() -> None:
    model = RetryingModel(
        FakeChatModel(),
        initial_backoff_s=1.0,
        max_backoff_s=100.0,
        jitter=0.5,
        rng=random.Random(7),
    )
    for attempt in range(1, 6):
        base = 2 ** (attempt - 1)
        waits = [model.backoff(attempt) for _ in range(50)]
        assert all(base * 0.5 <= wait <= base for wait in waits)
        assert len(set(waits)) > 1


async def test_max_attempts_then_the_last_error() -> None:
    errors = [ProviderUnavailable(f"down {i}") for i in range(5)]
    inner = FakeChatModel(errors)
    sleep = RecordingSleep()
    with pytest.raises(ProviderUnavailable) as raised:
        await retrying(inner, sleep, max_attempts=3).chat(HELLO)
    assert raised.value is errors[2]
    assert len(inner.calls) == 3
    assert len(sleep.waits) == 2


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryingModel(FakeChatModel(), max_attempts=0)


async def test_retry_after_is_a_floor() -> None:
    inner = FakeChatModel([RateLimited("slow down", retry_after=2.5), "ok"])
    sleep = RecordingSleep()
    await retrying(inner, sleep).chat(HELLO)
    assert sleep.waits == [2.5]


async def test_retry_after_beats_the_backoff_cap() -> None:
    inner = FakeChatModel([RateLimited("slow down", retry_after=20.0), "ok"])
    sleep = RecordingSleep()
    await retrying(inner, sleep, max_backoff_s=1.0, deadline_s=60.0).chat(HELLO)
    assert sleep.waits == [20.0]


async def test_a_longer_backoff_wins_over_a_short_retry_after() -> None:
    inner = FakeChatModel([RateLimited("slow down", retry_after=0.01), "ok"])
    sleep = RecordingSleep()
    await retrying(inner, sleep, initial_backoff_s=0.4).chat(HELLO)
    assert sleep.waits == [0.4]


async def test_no_wait_crosses_the_deadline() -> None:
    error = RateLimited("come back in a minute", retry_after=60.0)
    inner = FakeChatModel([error, "too late"])
    sleep = RecordingSleep()
    with pytest.raises(RateLimited) as raised:
        await retrying(inner, sleep, deadline_s=2.0).chat(HELLO)
    assert raised.value is error
    assert len(inner.calls) == 1
    assert sleep.waits == []


async def test_deadline_ends_a_hanging_attempt() -> None:
    model = RetryingModel(Hanging(), deadline_s=0.1)
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match="deadline"):
        await model.chat(HELLO)
    assert time.perf_counter() - started < 0.5


async def test_deadline_bounds_attempts_and_real_waits() -> None:
    inner = FakeChatModel([ProviderUnavailable(f"down {i}") for i in range(10)])
    model = RetryingModel(
        inner, max_attempts=10, initial_backoff_s=0.1, jitter=0.0, deadline_s=0.25
    )
    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable):
        await model.chat(HELLO)
    # attempt at 0 s, wait 0.1 s, attempt at 0.1 s; the next wait (0.2 s) would cross 0.25 s
    assert len(inner.calls) == 2
    assert time.perf_counter() - started < 0.25


async def test_stream_is_retried_before_its_first_delta() -> None:
    inner = FakeChatModel([ProviderUnavailable("down"), "hello there"])
    sleep = RecordingSleep()
    pieces: list[str] = []
    await collect(retrying(inner, sleep).stream(HELLO), pieces)
    assert "".join(pieces) == "hello there"
    assert len(inner.calls) == 2
    assert sleep.waits == [0.1]


async def test_stream_is_not_retried_after_its_first_delta() -> None:
    inner = PartialStream(["par", "tial"], ProviderUnavailable("broken stream"))
    sleep = RecordingSleep()
    pieces: list[str] = []
    with pytest.raises(ProviderUnavailable, match="broken stream"):
        await collect(retrying(inner, sleep).stream(HELLO), pieces)
    assert pieces == ["par", "tial"]
    assert inner.calls == 1
    assert sleep.waits == []


async def test_stream_does_not_retry_a_rejected_request() -> None:
    inner = FakeChatModel([ModelRequestRejected("bad", status_code=422), "never"])
    with pytest.raises(ModelRequestRejected):
        await collect(retrying(inner, RecordingSleep()).stream(HELLO), [])
    assert len(inner.calls) == 1


async def test_stream_deadline_covers_later_deltas() -> None:
    model = RetryingModel(PartialStream(["first "], None), deadline_s=0.1)
    pieces: list[str] = []
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout):
        await collect(model.stream(HELLO), pieces)
    assert pieces == ["first "]
    assert time.perf_counter() - started < 0.5


async def test_wrapper_reports_the_inner_name_and_tokens() -> None:
    inner = FakeChatModel(["answer"], name="inner-model")
    model = RetryingModel(inner)
    assert model.name == "inner-model"
    assert model.count_tokens("two words") == inner.count_tokens("two words")
    assert (await model.chat(HELLO)).model == "inner-model"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("1", 1.0), ("2.5", 2.5), (" 7 ", 7.0), ("-3", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    now = 1445412480.0 - 30  # 30 s before that date
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(date, now=now + 60) == 0.0
