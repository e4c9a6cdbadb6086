"""Session history kept in process memory: for one replica, tests and the CLI.

Each session keeps its newest messages within its size limits
(:class:`~genai_factory.memory.protocol.SizeLimits`) and its summary; a prompt gets the summary and
the newest turns that fit the message and token budget. Sessions idle past ``ttl_s`` are forgotten
(the least recently used are checked first, on every write), and past ``max_sessions`` the least
recently used go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genai_factory.memory.protocol import (
    DEFAULT_KEEP_BYTES,
    SessionHistory,
    SessionInfo,
    SizeLimits,
    Summary,
    check_owner,
    encode_message,
    keep_count,
    new_generation,
    prompt_history,
    stored_size,
)
from genai_factory.messages import Message


@dataclass
class _Session:
    owner: str | None
    touched: float
    generation: str = field(default_factory=new_generation)
    messages: list[Message] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    start: int = 0
    summary: Summary | None = None


class InMemoryHistory:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in this process's memory.

    Every method runs without awaiting in between, so each is atomic on the event loop.
    ``keep`` defaults to :func:`~genai_factory.memory.protocol.keep_count` messages and
    :data:`~genai_factory.memory.protocol.DEFAULT_KEEP_BYTES` bytes.
    """

    def __init__(
        self,
        *,
        max_messages: int = 8,
        max_tokens: int = 600,
        keep: SizeLimits | None = None,
        max_sessions: int = 10_000,
        ttl_s: float = 7 * 86_400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.keep = keep or SizeLimits(keep_count(max_messages), DEFAULT_KEEP_BYTES)
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def _expired(self, session: _Session) -> bool:
        return self._clock() - session.touched > self.ttl_s

    def _live(self, session_id: str) -> _Session | None:
        found = self._sessions.get(session_id)
        if found is not None and self._expired(found):
            del self._sessions[session_id]
            return None
        return found

    def _sweep(self) -> None:
        """Drop expired sessions: the least recently used come first, so stop at a live one."""
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if not self._expired(oldest):
                return
            self._sessions.popitem(last=False)

    def _touch(self, session_id: str, owner: str | None) -> _Session:
        self._sweep()
        session = self._live(session_id) or _Session(owner=owner, touched=0.0)
        session.touched = self._clock()
        self._sessions[session_id] = session
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo:
        found = self._live(session_id)
        if found is not None:
            check_owner(SessionInfo(session_id, found.owner), owner)
        session = self._touch(session_id, owner)
        return SessionInfo(session_id, session.owner)

    async def info(self, session_id: str) -> SessionInfo | None:
        found = self._live(session_id)
        return None if found is None else SessionInfo(session_id, found.owner)

    async def messages(self, session_id: str) -> list[Message]:
        found = self._live(session_id)
        return [] if found is None else list(found.messages)

    async def history(self, session_id: str) -> SessionHistory | None:
        found = self._live(session_id)
        if found is None:
            return None
        return SessionHistory(list(found.messages), found.start, found.summary, found.generation)

    async def get(self, session_id: str) -> list[Message]:
        """The session's summary and newest turns that fit the budget, oldest first."""
        return prompt_history(
            await self.history(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        session = self._touch(session_id, None)
        session.messages.extend(messages)
        session.sizes.extend(stored_size(encode_message(m)) for m in messages)
        dropped = len(session.messages) - self.keep.kept(session.sizes)
        if dropped:
            del session.messages[:dropped], session.sizes[:dropped]
            session.start += dropped

    async def save_summary(
        self, session_id: str, generation: str, summary: Summary, *, replaces: int
    ) -> bool:
        found = self._live(session_id)
        if found is None or found.generation != generation:
            return False
        covered = found.summary.through if found.summary is not None else 0
        if covered != replaces or summary.through <= covered:
            return False
        found.summary = summary
        return True

    async def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def aclose(self) -> None:
        self._sessions.clear()
