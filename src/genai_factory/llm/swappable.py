"""A ``ChatModel`` whose backend can be replaced while requests are running.

The service serves the registry's ``champion`` through one of these: a promotion loads the new
weights beside the old ones, then :meth:`SwappableModel.swap` points new requests at the new backend
in one assignment. Requests already running keep the backend they started with (a stream included)
and the old backend is closed only when the last of them has finished, so a promotion fails no
request, in flight or new.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import structlog

from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message

log = structlog.get_logger(__name__)


class SwappableModel(ChatModel):
    """Delegates every call to the current backend; :meth:`swap` replaces it without a pause.

    Args:
        inner: the first backend.
        version: a label for it (``"base"`` for the model as shipped, else the registry version).
    """

    def __init__(self, inner: ChatModel, *, version: str = "base") -> None:
        self.inner = inner
        self.version = version
        self.adopt_capabilities(inner)
        self._in_flight: dict[int, int] = {}
        self._retired: dict[int, ChatModel] = {}
        self._closers: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    # -- bookkeeping ---------------------------------------------------------------------------
    def _enter(self) -> ChatModel:
        model = self.inner
        self._in_flight[id(model)] = self._in_flight.get(id(model), 0) + 1
        return model

    def _leave(self, model: ChatModel) -> None:
        key = id(model)
        left = self._in_flight.get(key, 1) - 1
        if left > 0:
            self._in_flight[key] = left
            return
        self._in_flight.pop(key, None)
        retired = self._retired.pop(key, None)
        if retired is not None:
            self._close_later(retired)

    def _close_later(self, model: ChatModel) -> None:
        task = asyncio.get_running_loop().create_task(model.aclose())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    def in_flight(self) -> int:
        """Requests running now, on every backend."""
        return sum(self._in_flight.values())

    # -- the swap ------------------------------------------------------------------------------
    async def swap(self, new: ChatModel, *, version: str) -> ChatModel:
        """Serve ``new`` from now on; close the old backend once its last request has finished.

        ``new`` should be loaded already (``await new.load()``) so the first request does not wait.
        Returns the old backend.
        """
        old = self.inner
        if new is old:
            return old
        self.inner, self.version = new, version
        self.adopt_capabilities(new)
        if self._in_flight.get(id(old), 0) > 0:
            self._retired[id(old)] = old
        else:
            self._close_later(old)
        log.info("model_swapped", model=new.name, version=version, previous=old.name)
        return old

    # -- ChatModel -----------------------------------------------------------------------------
    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        model = self._enter()
        try:
            return await model.chat(messages, options)
        finally:
            self._leave(model)

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        model = self._enter()
        try:
            async for delta in model.stream(messages, options):
                yield delta
        finally:
            self._leave(model)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        retired = list(self._retired.values())
        self._retired.clear()
        for model in [*retired, self.inner]:
            await model.aclose()
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)
