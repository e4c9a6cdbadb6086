"""``CircuitBreakerModel``: stop calling a backend that keeps failing, then probe it carefully.

States:

* **closed**: calls go through; consecutive provider failures are counted, a success resets the
  count. At ``failure_threshold`` consecutive failures the breaker opens.
* **open**: calls fail fast with :class:`CircuitOpen` (no I/O at all) until ``cooldown_s`` has
  passed.
* **half_open**: exactly one trial call is let through; the others keep failing fast. Its success
  closes the breaker, its failure opens it again for another cool-down.

Only :class:`ProviderError` counts as a failure: the caller's own bad request says nothing about the
backend's health. One breaker guards one backend; wrap each backend in its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from enum import StrEnum

from genai_factory.exceptions import CircuitOpen, ProviderError
from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[str, BreakerState], None]


class CircuitBreakerModel(ChatModel):
    """A circuit breaker around one backend.

    Args:
        inner: the backend.
        failure_threshold: consecutive provider failures that open the breaker.
        cooldown_s: how long the breaker stays open before one trial call.
        clock: monotonic seconds (tests pass a fake).
        on_state_change: called with ``(name, new_state)`` on every transition (metrics, logs).
    """

    def __init__(
        self,
        inner: ChatModel,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateListener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.inner = inner
        self.name = inner.name
        self.adopt_capabilities(inner)
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._listener = on_state_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cool-down has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._listener is not None:
                self._listener(self.name, state)

    def _admit(self) -> bool:
        """Let a call through (True if it is the half-open trial) or raise :class:`CircuitOpen`.

        Runs without awaiting (atomic).
        """
        if self._state is BreakerState.OPEN and self._cooled_down():
            self._set(BreakerState.HALF_OPEN)
        if self._state is BreakerState.CLOSED:
            return False
        if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        remaining = max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
        raise CircuitOpen(
            f"circuit for {self.name} is {self._state.value}; failing fast",
            provider=self.name,
            retry_after=remaining,
        )

    # Only the trial itself frees the trial slot: a call admitted earlier, while the breaker was
    # closed, may end during the trial and must not let a second trial through.
    def _record_success(self, trial: bool) -> None:
        self._failures = 0
        if trial:
            self._trial_in_flight = False
        self._set(BreakerState.CLOSED)

    def _record_failure(self, trial: bool) -> None:
        if trial:
            self._trial_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _record_neutral(self, trial: bool) -> None:
        """The call ended without telling anything about the backend (bad request, cancel)."""
        if trial:
            self._trial_in_flight = False

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        trial = self._admit()
        try:
            response = await self.inner.chat(messages, options)
        except ProviderError:
            self._record_failure(trial)
            raise
        except BaseException:
            self._record_neutral(trial)
            raise
        self._record_success(trial)
        return response

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        trial = self._admit()
        finished = False
        try:
            async for delta in self.inner.stream(messages, options):
                if delta.finish_reason is not None:
                    finished = True
                yield delta
        except ProviderError:
            self._record_failure(trial)
            raise
        finally:
            if finished:
                self._record_success(trial)
            else:
                self._record_neutral(trial)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
