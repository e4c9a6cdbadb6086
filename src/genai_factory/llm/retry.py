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

    def _wait_after(self, attempt_number: int, exc: BaseException, deadline: float) -> float | None:
        """The wait before the attempt after failed attempt ``attempt_number``, or None when there
        is none: the failure is not retryable, the attempts are used up, or the wait would reach
        the deadline. A 429's ``Retry-After`` is a floor on the wait."""
        if not is_retryable(exc) or attempt_number >= self.max_attempts:
            return None
        wait = self.backoff(attempt_number)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        if asyncio.get_running_loop().time() + wait >= deadline:
            return None
        return wait

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
        attempt_number = 1
        while True:
            try:
                return await self._within(deadline, self.inner.chat(messages, options))
            except Exception as exc:
                wait = self._wait_after(attempt_number, exc, deadline)
                if wait is None:
                    raise
            await self._sleep(wait)
            attempt_number += 1

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        attempt_number = 1
        while True:
            source = aiter(self.inner.stream(messages, options))
            try:
                first = await self._within(deadline, anext(source))
                break
            except BaseException as exc:
                await _close(source)
                wait = self._wait_after(attempt_number, exc, deadline)
                if wait is None:
                    raise
            await self._sleep(wait)
            attempt_number += 1
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
