"""Session history kept in process memory: for one replica, tests and the CLI.

Each session keeps its newest messages (see :func:`~genai_factory.memory.protocol.keep_count`);
a prompt gets the newest turns that fit the message and token budget. Sessions idle past ``ttl_s``
are forgotten, and past ``max_sessions`` the least recently used go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genai_factory.memory.protocol import (
    SessionInfo,
    check_owner,
    keep_count,
    recent_within_budget,
)
from genai_factory.messages import Message


@dataclass
class _Session:
    owner: str | None
    touched: float
    messages: list[Message] = field(default_factory=list)


class InMemoryHistory:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in this process's memory.

    Every method runs without awaiting in between, so each is atomic on the event loop.
    """

    def __init__(
        self,
        *,
        max_messages: int = 8,
        max_tokens: int = 600,
        max_sessions: int = 10_000,
        ttl_s: float = 7 * 86_400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def _live(self, session_id: str) -> _Session | None:
        found = self._sessions.get(session_id)
        if found is not None and self._clock() - found.touched > self.ttl_s:
            del self._sessions[session_id]
            return None
        return found

    def _touch(self, session_id: str, owner: str | None) -> _Session:
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

    async def get(self, session_id: str) -> list[Message]:
        """The session's newest turns that fit the budget, oldest first."""
        return recent_within_budget(
            await self.messages(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        session = self._touch(session_id, None)
        session.messages.extend(messages)
        del session.messages[: -keep_count(self.max_messages)]

    async def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def aclose(self) -> None:
        self._sessions.clear()
