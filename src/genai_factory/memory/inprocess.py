"""Session history kept in process memory: the embedded default for a single replica.

Each session keeps its most recent turns, bounded by message count and by an estimated token
budget, oldest first out. Sessions idle past the cap are forgotten least-recently-used first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import Message


class InMemoryHistory:
    def __init__(
        self, *, max_messages: int = 8, max_tokens: int = 600, max_sessions: int = 10_000
    ) -> None:
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, list[Message]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def get(self, session_id: str) -> list[Message]:
        """The session's recent turns that fit the budget, oldest first."""
        async with self._lock:
            messages = list(self._sessions.get(session_id, []))
        kept: list[Message] = []
        budget = self.max_tokens
        for message in reversed(messages[-self.max_messages :] if self.max_messages else []):
            cost = estimate_tokens(message.content)
            if cost > budget:
                break
            budget -= cost
            kept.insert(0, message)
        return kept

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        async with self._lock:
            history = self._sessions.pop(session_id, [])
            history.extend(messages)
            self._sessions[session_id] = history[-max(self.max_messages, 1) * 2 :]
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
