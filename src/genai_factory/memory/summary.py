"""``SummarizingHistory``: a session store that folds turns leaving the prompt window into a summary.

It wraps any :class:`~genai_factory.memory.protocol.SessionStore`. After each ``append`` it starts,
in the background, a summary of the session's turns that no longer fit the prompt's window and that
the summary does not cover yet (:func:`~genai_factory.memory.protocol.fallen_out`): the model gets
the previous summary and those turns and writes the new summary, which the inner store keeps with
the session (``save_summary``, refused when the session changed meanwhile). The store's ``get``
then puts the summary before the window, so a long conversation keeps its gist.

Summarising never delays nor fails an answer: it runs after ``append`` returns, outside the
request (so it is not charged to the request's key; each summary is logged as
``session_summarized`` with its tokens), one summary at a time per session and, by default, one
at a time in all in this process. When the model call fails or writes nothing, the
failure is logged (``session_summary_failed``), the session keeps its plain window, and the next
append tries again. Turns are folded in oldest first, at most ``input_tokens`` of them per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Sequence

import structlog

from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_tokens
from genai_factory.memory.protocol import (
    SessionHistory,
    SessionInfo,
    SessionStore,
    Summary,
    fallen_out,
)
from genai_factory.messages import ChatOptions, Message

log = structlog.get_logger(__name__)

SUMMARY_INSTRUCTIONS = (
    "You keep the memory of a conversation between a user and an assistant. Rewrite the summary "
    "so far to also cover the new turns: the facts the user gave, what they asked and what the "
    "assistant answered. Write a few short plain sentences in the third person, no lists."
)
#: Characters of one message given to the summariser (longer ones are cut).
MESSAGE_CHARS = 1_500
#: Characters of a summary kept, whatever the model wrote.
MAX_SUMMARY_CHARS = 4_000


def summary_prompt(previous: str | None, turns: Sequence[Message]) -> list[Message]:
    """The messages asking a model to fold ``turns`` into the ``previous`` summary."""
    lines = [f"{m.role.capitalize()}: {m.content[:MESSAGE_CHARS]}" for m in turns]
    request = (
        f"Summary so far: {previous or '(none)'}\n\nNew turns:\n"
        + "\n".join(lines)
        + "\n\nUpdated summary:"
    )
    return [Message.system(SUMMARY_INSTRUCTIONS), Message.user(request)]


def next_batch(pending: Sequence[Message], input_tokens: int) -> list[Message]:
    """The oldest pending messages whose estimated tokens fit ``input_tokens`` (at least one)."""
    batch: list[Message] = []
    used = 0
    for message in pending:
        cost = estimate_tokens(message.content[:MESSAGE_CHARS])
        if batch and used + cost > input_tokens:
            break
        batch.append(message)
        used += cost
    return batch


def cleaned_summary(text: str) -> str:
    """The model's summary, trimmed and bounded (empty when it wrote nothing usable)."""
    cleaned = " ".join(text.split())
    return cleaned.removeprefix("Updated summary:").strip()[:MAX_SUMMARY_CHARS]


class SummarizingHistory:
    """A :class:`~genai_factory.memory.protocol.SessionStore` around ``inner`` that summarises
    the turns leaving the prompt window with ``model`` (see the module docstring).

    Args:
        inner: the store that keeps messages and summaries.
        model: writes the summaries.
        summary_tokens: the summary's token cap (the model's ``max_tokens``).
        input_tokens: estimated tokens of turns folded in per model call.
        concurrency: summaries written at once in this process (the others wait their turn, so
            they never crowd the answers out of a model that serves one call at a time).
    """

    def __init__(
        self,
        inner: SessionStore,
        model: ChatModel,
        *,
        summary_tokens: int = 128,
        input_tokens: int = 1_000,
        concurrency: int = 1,
    ) -> None:
        self.inner = inner
        self.model = model
        self.options = ChatOptions(max_tokens=summary_tokens, temperature=0.0)
        self.input_tokens = input_tokens
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    @property
    def max_messages(self) -> int:
        return self.inner.max_messages

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    # -- the store ----------------------------------------------------------------------------

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo:
        return await self.inner.claim(session_id, owner)

    async def info(self, session_id: str) -> SessionInfo | None:
        return await self.inner.info(session_id)

    async def get(self, session_id: str) -> list[Message]:
        return await self.inner.get(session_id)

    async def messages(self, session_id: str) -> list[Message]:
        return await self.inner.messages(session_id)

    async def history(self, session_id: str) -> SessionHistory | None:
        return await self.inner.history(session_id)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        await self.inner.append(session_id, messages)
        self._schedule(session_id)

    async def save_summary(
        self, session_id: str, generation: str, summary: Summary, *, replaces: int
    ) -> bool:
        return await self.inner.save_summary(session_id, generation, summary, replaces=replaces)

    async def delete(self, session_id: str) -> bool:
        self._again.discard(session_id)
        running = self._running.pop(session_id, None)
        if running is not None:
            running.cancel()
        return await self.inner.delete(session_id)

    async def aclose(self) -> None:
        tasks = list(self._running.values())
        self._running.clear()
        self._again.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.inner.aclose()

    # -- summarising --------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until no summary is being written (tests, and a graceful stop)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _schedule(self, session_id: str) -> None:
        if session_id in self._running:
            self._again.add(session_id)  # the running task goes once more when it is done
            return
        # A fresh context: the summary is not part of the request that triggered it.
        task = asyncio.get_running_loop().create_task(
            self._summarize_while_needed(session_id),
            name=f"session-summary:{session_id}",
            context=contextvars.Context(),
        )
        self._running[session_id] = task

    async def _summarize_while_needed(self, session_id: str) -> None:
        try:
            while True:
                async with self._slots:
                    self._again.discard(session_id)
                    stored = await self.summarize(session_id)
                # A stored summary may leave more to fold in (one batch per call): look again.
                if not stored and session_id not in self._again:
                    return
        finally:
            if self._running.get(session_id) is asyncio.current_task():
                del self._running[session_id]

    async def summarize(self, session_id: str) -> bool:
        """Fold the next batch of fallen-out turns into the session's summary now.

        Returns whether a new summary was stored. Never raises (except on cancellation): a failure
        is logged and the session keeps its plain window.
        """
        try:
            return await self._summarize(session_id)
        except Exception as exc:
            log.warning(
                "session_summary_failed",
                session_id=session_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return False

    async def _summarize(self, session_id: str) -> bool:
        found = await self.inner.history(session_id)
        if found is None:
            return False
        pending = fallen_out(found, max_messages=self.max_messages, max_tokens=self.max_tokens)
        if not pending:
            return False
        if found.covered < found.start:
            log.warning(
                "session_turns_dropped_unsummarized",
                session_id=session_id,
                messages=found.start - found.covered,
            )
        batch = next_batch(pending, self.input_tokens)
        previous = found.summary.text if found.summary is not None else None
        response = await self.model.chat(summary_prompt(previous, batch), self.options)
        text = cleaned_summary(response.text)
        if not text:
            raise ValueError("the model wrote an empty summary")
        first = found.end - len(found.uncovered())  # the position of pending[0]
        summary = Summary(text, first + len(batch))
        saved = await self.inner.save_summary(
            session_id, found.generation, summary, replaces=found.covered
        )
        log.info(
            "session_summarized",
            session_id=session_id,
            saved=saved,
            covers=summary.through,
            model=response.model,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
        )
        return saved
