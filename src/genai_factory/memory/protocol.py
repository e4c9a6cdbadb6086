"""The ``SessionStore`` interface, session ownership, and the token-aware history window.

Contract for implementers:

* ``claim(session_id, owner)`` creates the session for ``owner`` (an API key id, or ``None`` when
  auth is off) when it does not exist, atomically (also across processes for a shared backend), and
  otherwise checks that ``owner`` may use it (:func:`check_owner`), raising :class:`PermissionDenied`.
* ``get(session_id)`` returns the turns to put into the next prompt: the newest that fit in the
  store's message and token budget, oldest first (:func:`recent_within_budget`).
* ``append`` adds messages and keeps only the newest ones; ``messages`` returns every kept message;
  ``info`` says who owns a session (``None`` when it does not exist); ``delete`` forgets it.
* Storage errors are raised as :class:`ServiceNotReady` (503): the backend is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from genai_factory.exceptions import PermissionDenied
from genai_factory.llm.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from genai_factory.messages import Message

#: Messages kept per session, per allowed prompt message (a user turn and an answer each).
KEEP_FACTOR = 2


@dataclass(frozen=True)
class SessionInfo:
    """Who owns a session (``None``: created while auth was off) and when it was last used."""

    id: str
    owner: str | None
    updated_at: datetime | None = None


class SessionStore(Protocol):
    """Per-session chat history (see the module docstring for the contract)."""

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo: ...

    async def info(self, session_id: str) -> SessionInfo | None: ...

    async def get(self, session_id: str) -> list[Message]: ...

    async def messages(self, session_id: str) -> list[Message]: ...

    async def append(self, session_id: str, messages: Sequence[Message]) -> None: ...

    async def delete(self, session_id: str) -> bool: ...

    async def aclose(self) -> None: ...


def check_owner(session: SessionInfo, owner: str | None) -> None:
    """Let ``owner`` use ``session``: its own sessions, or any session when auth is off.

    A key may not use a session created while auth was off (it has no owner), nor another key's.

    Raises:
        PermissionDenied: the session belongs to someone else.
    """
    if owner is None or session.owner == owner:
        return
    raise PermissionDenied(f"session {session.id!r} belongs to another API key")


def message_tokens(message: Message) -> int:
    """The estimated prompt tokens of one history message, template overhead included."""
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS


def recent_within_budget(
    messages: Sequence[Message], *, max_messages: int, max_tokens: int
) -> list[Message]:
    """The newest messages that fit both budgets, oldest first, starting with a user turn.

    Walks back from the newest message and stops at the first one that no longer fits, so the
    window is always a contiguous tail of the conversation. A leading answer whose question did not
    fit is dropped too, so the model never sees an answer without its question.
    """
    if max_messages <= 0 or max_tokens <= 0:
        return []
    kept: list[Message] = []
    budget = max_tokens
    for message in reversed(messages[-max_messages:]):
        cost = message_tokens(message)
        if cost > budget:
            break
        budget -= cost
        kept.append(message)
    kept.reverse()
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept


def keep_count(max_messages: int) -> int:
    """How many messages a store keeps per session (more than a prompt takes, never zero)."""
    return max(max_messages, 1) * KEEP_FACTOR
