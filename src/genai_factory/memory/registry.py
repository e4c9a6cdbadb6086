"""Build the configured session store: the one place that maps ``memory.backend`` to a class.

The names are the table :data:`genai_factory.components.SESSION_STORES`; each factory below takes
the settings, and every backend gets the same limits (:class:`Limits`), so they behave the same.
With ``memory.summaries`` and a model, the store is wrapped in
:class:`~genai_factory.memory.summary.SummarizingHistory`. Building opens nothing: the SQLite file
is opened on first use and the Redis client connects on its first command, so this can run while
the components are assembled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from genai_factory.components import SESSION_STORES, lookup
from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.base import ChatModel
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionStore, SizeLimits
from genai_factory.memory.summary import SummarizingHistory

SessionStoreFactory = Callable[[Settings], SessionStore]
#: The messages of one turn: a question and its answer.
TURN_MESSAGES = 2


def session_backend(settings: Settings) -> str:
    """A registered store name: ``auto`` is Redis when a Redis URL is configured, else SQLite."""
    backend = settings.memory.backend
    if backend == "auto":
        return "redis" if settings.memory_redis_url() else "sqlite"
    return backend


def build_session_store(settings: Settings, *, model: ChatModel | None = None) -> SessionStore:
    """The session store named by ``settings.memory`` (close it with ``aclose``); with
    ``memory.summaries`` and a ``model``, one that summarises turns leaving the window.

    Raises:
        ConfigurationError: an unregistered backend, ``memory.backend=redis`` without a Redis
            URL, or an invalid URL.
    """
    entry = lookup(SESSION_STORES, session_backend(settings), "session store")
    store = cast(SessionStoreFactory, entry.load())(settings)
    memory = settings.memory
    if model is None or not memory.summaries:
        return store
    return SummarizingHistory(store, model, summary_tokens=memory.summary_max_tokens)


@dataclass(frozen=True)
class Limits:
    """A session's prompt window (messages, estimated tokens), what it keeps, and its idle
    seconds. It keeps at least the window and one more turn, so a turn leaving the window can
    still be summarised."""

    messages: int
    tokens: int
    ttl_s: int
    keep: SizeLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        memory = settings.memory
        window = settings.service.max_history_messages
        kept = max(memory.max_session_messages, window + TURN_MESSAGES)
        keep = SizeLimits(messages=kept, bytes=memory.max_session_bytes)
        return cls(window, memory.max_tokens, memory.ttl_s, keep)


def in_process_store(settings: Settings) -> SessionStore:
    limits = Limits.from_settings(settings)
    return InMemoryHistory(
        max_messages=limits.messages, max_tokens=limits.tokens, keep=limits.keep, ttl_s=limits.ttl_s
    )


def sqlite_store(settings: Settings) -> SessionStore:
    from genai_factory.memory.sqlite_store import SqliteSessionStore

    limits = Limits.from_settings(settings)
    return SqliteSessionStore(
        settings.data_dir / "sessions.db",
        max_messages=limits.messages,
        max_tokens=limits.tokens,
        keep=limits.keep,
        ttl_s=limits.ttl_s,
    )


def redis_store(settings: Settings) -> SessionStore:
    url = settings.memory_redis_url()
    if url is None:
        raise ConfigurationError("memory.backend=redis needs memory.redis_url or gateway.redis_url")
    from redis.asyncio import Redis

    from genai_factory.gateway.redis_backends import NO_MAINTENANCE_NOTIFICATIONS
    from genai_factory.memory.redis_store import RedisSessionStore

    try:
        client: Redis = Redis.from_url(url, maint_notifications_config=NO_MAINTENANCE_NOTIFICATIONS)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL for sessions: {exc}") from exc
    limits = Limits.from_settings(settings)
    return RedisSessionStore(
        client,
        prefix=settings.gateway.redis_prefix,
        max_messages=limits.messages,
        max_tokens=limits.tokens,
        keep=limits.keep,
        ttl_s=limits.ttl_s,
    )
