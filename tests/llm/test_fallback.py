"""FallbackModel: moves on after provider failures, never after the caller's own errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from genai_factory.exceptions import (
    CircuitOpen,
    InvalidRequestError,
    ModelRequestRejected,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.fallback import FallbackModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message
from genai_factory.testing.fakes import FakeChatModel

HELLO = [Message.user("hello")]


class PartialStream(ChatModel):
    """Streams one piece, then breaks."""

    def __init__(self) -> None:
        self.name = "partial"
        self.closed = False

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        raise NotImplementedError

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="half ", model=self.name)
        raise ProviderUnavailable("stream broke")

    async def aclose(self) -> None:
        self.closed = True


async def collect(stream: AsyncIterator[ChatDelta], into: list[str]) -> None:
    async for delta in stream:
        into.append(delta.text)


async def streamed(model: ChatModel) -> list[ChatDelta]:
    return [delta async for delta in model.stream(HELLO)]


async def test_the_primary_answers_when_it_can() -> None:
    primary = FakeChatModel(["from primary"], name="primary")
    backup = FakeChatModel(["from backup"], name="backup")
    response = await FallbackModel(primary, backup).chat(HELLO)
    assert response.text == "from primary"
    assert response.model == "primary"
    assert backup.calls == []


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("429", retry_after=30.0),
        ProviderTimeout("slow"),
        ProviderUnavailable("503", status_code=503),
        CircuitOpen("open"),
        ProviderError("bad provider key", status_code=401),
    ],
)
async def test_moves_on_after_a_provider_error(error: ProviderError) -> None:
    primary = FakeChatModel([error], name="primary")
    backup = FakeChatModel(["from backup"], name="backup")
    response = await FallbackModel(primary, backup).chat(HELLO)
    assert response.text == "from backup"
    assert response.model == "backup"
    assert len(primary.calls) == 1
    assert len(backup.calls) == 1


@pytest.mark.parametrize(
    "error", [ModelRequestRejected("bad request", status_code=400), InvalidRequestError("bad")]
)
async def test_never_moves_on_after_the_callers_error(error: InvalidRequestError) -> None:
    primary = FakeChatModel([error], name="primary")
    backup = FakeChatModel(["from backup"], name="backup")
    with pytest.raises(type(error)) as raised:
        await FallbackModel(primary, backup).chat(HELLO)
    assert raised.value is error
    assert backup.calls == []


async def test_unexpected_errors_are_not_swallowed() -> None:
    primary = FakeChatModel([RuntimeError("a bug")], name="primary")
    backup = FakeChatModel(["from backup"], name="backup")
    with pytest.raises(RuntimeError, match="a bug"):
        await FallbackModel(primary, backup).chat(HELLO)
    assert backup.calls == []


async def test_walks_the_chain_in_order_and_reports_each_move() -> None:
    moves: list[tuple[str, str, str]] = []
    first = FakeChatModel([ProviderUnavailable("first down")], name="first")
    second = FakeChatModel([RateLimited("second busy")], name="second")
    third = FakeChatModel(["third answers"], name="third")
    model = FallbackModel(
        first, second, third, on_fallback=lambda a, b, e: moves.append((a, b, e.message))
    )
    response = await model.chat(HELLO)
    assert response.model == "third"
    assert moves == [("first", "second", "first down"), ("second", "third", "second busy")]


async def test_when_every_model_fails_the_error_names_them_all() -> None:
    moves: list[str] = []
    last = ProviderTimeout("second timed out")
    first = FakeChatModel([ProviderUnavailable("first down")], name="first")
    second = FakeChatModel([last], name="second")
    model = FallbackModel(first, second, on_fallback=lambda a, b, e: moves.append(a))
    with pytest.raises(ProviderUnavailable) as raised:
        await model.chat(HELLO)
    message = raised.value.message
    assert "first: first down" in message
    assert "second: second timed out" in message
    assert raised.value.__cause__ is last
    assert moves == ["first"]


async def test_a_single_model_chain_behaves_like_the_model() -> None:
    model = FallbackModel(FakeChatModel(["alone"], name="solo"))
    assert (await model.chat(HELLO)).model == "solo"
    assert model.name == "solo"


async def test_stream_falls_back_before_the_first_delta() -> None:
    primary = FakeChatModel([ProviderUnavailable("down")], name="primary")
    backup = FakeChatModel(["streamed by backup"], name="backup")
    deltas = await streamed(FallbackModel(primary, backup))
    assert "".join(d.text for d in deltas) == "streamed by backup"
    assert {d.model for d in deltas} == {"backup"}
    assert deltas[-1].finish_reason == "stop"


async def test_stream_does_not_fall_back_after_the_first_delta() -> None:
    backup = FakeChatModel(["never"], name="backup")
    pieces: list[str] = []
    with pytest.raises(ProviderUnavailable, match="stream broke"):
        await collect(FallbackModel(PartialStream(), backup).stream(HELLO), pieces)
    assert pieces == ["half "]
    assert backup.calls == []


async def test_stream_never_falls_back_after_a_rejected_request() -> None:
    primary = FakeChatModel([ModelRequestRejected("bad", status_code=422)], name="primary")
    backup = FakeChatModel(["never"], name="backup")
    with pytest.raises(ModelRequestRejected):
        await streamed(FallbackModel(primary, backup))
    assert backup.calls == []


async def test_stream_error_when_every_model_fails() -> None:
    primary = FakeChatModel([ProviderUnavailable("down")], name="primary")
    backup = FakeChatModel([CircuitOpen("open")], name="backup")
    with pytest.raises(ProviderUnavailable, match="every model"):
        await streamed(FallbackModel(primary, backup))


async def test_tokens_come_from_the_primary_and_aclose_reaches_every_model() -> None:
    partial = PartialStream()
    other = PartialStream()
    model = FallbackModel(partial, other)
    assert model.count_tokens("three small words") == partial.count_tokens("three small words")
    await model.aclose()
    assert partial.closed
    assert other.closed
