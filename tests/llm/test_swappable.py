"""SwappableModel: a swap redirects new calls at once and never breaks a call already running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from genai_factory.llm.base import ChatModel
from genai_factory.llm.swappable import SwappableModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message, Usage


class SlowModel(ChatModel):
    """Streams ``pieces`` deltas, waiting on ``gate`` before the last; records whether closed."""

    def __init__(self, name: str, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.gate = gate
        self.closed = False

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        if self.closed:
            raise RuntimeError("used after close")
        if self.gate is not None:
            await self.gate.wait()
        return ChatResponse(
            text=self.name, model=self.name, usage=Usage(prompt_tokens=1, completion_tokens=1)
        )

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        for part in ("a", "b"):
            if self.closed:
                raise RuntimeError("used after close")
            yield ChatDelta(text=part, model=self.name)
            if self.gate is not None:
                await self.gate.wait()
        yield ChatDelta(text="", finish_reason="stop", model=self.name)

    async def aclose(self) -> None:
        self.closed = True


QUESTION = [Message(role="user", content="hi")]


async def test_new_calls_go_to_the_new_backend() -> None:
    old, new = SlowModel("old"), SlowModel("new")
    model = SwappableModel(old)
    assert (await model.chat(QUESTION)).model == "old"
    await model.swap(new, version="2")
    assert model.version == "2"
    assert model.name == "new"
    assert (await model.chat(QUESTION)).model == "new"
    await asyncio.sleep(0)
    assert old.closed
    assert not new.closed


async def test_running_calls_finish_on_the_old_backend_which_is_closed_after() -> None:
    gate = asyncio.Event()
    old, new = SlowModel("old", gate), SlowModel("new")
    model = SwappableModel(old)
    running = asyncio.create_task(model.chat(QUESTION))
    stream = model.stream(QUESTION)
    first = await anext(stream)
    await asyncio.sleep(0)
    assert model.in_flight() == 2

    await model.swap(new, version="7")
    assert (await model.chat(QUESTION)).model == "new"
    assert not old.closed  # two calls still use it

    gate.set()
    assert (await running).model == "old"
    rest = [delta async for delta in stream]
    assert first.model == "old"
    assert all(delta.model == "old" for delta in rest)
    await asyncio.sleep(0)
    assert old.closed
    assert model.in_flight() == 0


async def test_aclose_closes_current_and_retired() -> None:
    gate = asyncio.Event()
    old, new = SlowModel("old", gate), SlowModel("new")
    model = SwappableModel(old)
    running = asyncio.create_task(model.chat(QUESTION))
    await asyncio.sleep(0)
    await model.swap(new, version="2")
    await model.aclose()
    assert old.closed
    assert new.closed
    gate.set()
    await asyncio.gather(running, return_exceptions=True)
