"""``RetryingModel``: exponential backoff with jitter, ``Retry-After``, and a total deadline per call.

What is retried: :class:`RateLimited` (429), :class:`ProviderUnavailable` (408, 409, 5xx, refused or
reset connections, broken streams) and :class:`ProviderTimeout`. Everything else is raised at once,
in particular the caller's own 4xx (:class:`InvalidRequestError`) and :class:`CircuitOpen`.

A 429's ``Retry-After`` is a floor: the next attempt starts no sooner than it says. No attempt, and
no wait, runs past the call's deadline; when the next wait would cross it, the last error is raised.
A stream is retried only until its first delta has been delivered, never after.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from genai_factory.exceptions import (
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def is_retryable(exc: BaseException) -> bool:
    """True for the provider failures a later attempt may get past."""
    return isinstance(exc, RateLimited | ProviderUnavailable | ProviderTimeout)


class RetryingModel(ChatModel):
    """Retries the wrapped model's transient failures within a total deadline per call.

    Args:
        inner: the model to call.
        max_attempts: attempts in all, the first one included.
        initial_backoff_s: the wait after the first failure; it doubles after each one.
        max_backoff_s: the cap on one wait (a longer ``Retry-After`` still wins).
        deadline_s: the whole call, waits included, ends within this many seconds.
        jitter: fraction of each backoff drawn at random (0 to turn jitter off).
        sleep: the coroutine used to wait (tests pass a recorder).
    """

    def __init__(
        self,
        inner: ChatModel,
        *,
        max_attempts: int = 3,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        deadline_s: float = 120.0,
        jitter: float = 0.5,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.inner = inner
        self.name = inner.name
        self.adopt_capabilities(inner)
        self.max_attempts = max_attempts
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.deadline_s = deadline_s
        self.jitter = jitter
        self._sleep = sleep
        self._rng = rng or random.Random()

    def backoff(self, attempt_number: int) -> float:
        """The wait after failed attempt ``attempt_number`` (1-based), jitter included."""
        base = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** (attempt_number - 1))
        return base * (1 - self.jitter * self._rng.random())

    def _wait(self, state: RetryCallState) -> float:
        wait = self.backoff(state.attempt_number)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait

    def _retrying(self, deadline: float) -> AsyncRetrying:
        loop = asyncio.get_running_loop()

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            return loop.time() + state.upcoming_sleep >= deadline

        return AsyncRetrying(
            stop=stop,
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            sleep=self._sleep,
            reraise=True,
        )

    async def _within(self, deadline: float, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` but give up, as a :class:`ProviderTimeout`, at the deadline."""
        try:
            async with asyncio.timeout_at(deadline):
                return await awaitable
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"{self.name}: call deadline of {self.deadline_s:g}s exceeded", provider=self.name
            ) from exc

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        async for attempt in self._retrying(deadline):
            with attempt:
                return await self._within(deadline, self.inner.chat(messages, options))
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        source: AsyncIterator[ChatDelta] | None = None
        first: ChatDelta | None = None
        async for attempt in self._retrying(deadline):
            with attempt:
                source = aiter(self.inner.stream(messages, options))
                try:
                    first = await self._within(deadline, anext(source))
                except BaseException:
                    await _close(source)
                    raise
        if source is None or first is None:  # pragma: no cover - tenacity returns or raises
            raise AssertionError("retry loop ended without a stream")
        try:
            yield first
            while True:
                try:
                    delta = await self._within(deadline, anext(source))
                except StopAsyncIteration:
                    return
                yield delta
        finally:
            await _close(source)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _close(source: AsyncIterator[ChatDelta]) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()
