"""Build the configured session store: the one place that maps ``memory.backend`` to a class.

The names are the table :data:`genai_factory.components.SESSION_STORES`; each factory below takes
the settings. Building opens nothing: the SQLite file is opened on first use and the Redis client
connects on its first command, so this can run while the components are assembled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from genai_factory.components import SESSION_STORES, lookup
from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionStore

SessionStoreFactory = Callable[[Settings], SessionStore]


def session_backend(settings: Settings) -> str:
    """A registered store name: ``auto`` is Redis when a Redis URL is configured, else SQLite."""
    backend = settings.memory.backend
    if backend == "auto":
        return "redis" if settings.memory_redis_url() else "sqlite"
    return backend


def build_session_store(settings: Settings) -> SessionStore:
    """The session store named by ``settings.memory`` (close it with ``aclose``).

    Raises:
        ConfigurationError: an unregistered backend, ``memory.backend=redis`` without a Redis
            URL, or an invalid URL.
    """
    entry = lookup(SESSION_STORES, session_backend(settings), "session store")
    return cast(SessionStoreFactory, entry.load())(settings)


@dataclass(frozen=True)
class Limits:
    """How much history a session keeps: messages, estimated tokens, idle seconds."""

    messages: int
    tokens: int
    ttl_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        memory = settings.memory
        return cls(settings.service.max_history_messages, memory.max_tokens, memory.ttl_s)


def in_process_store(settings: Settings) -> SessionStore:
    limits = Limits.from_settings(settings)
    return InMemoryHistory(
        max_messages=limits.messages, max_tokens=limits.tokens, ttl_s=limits.ttl_s
    )


def sqlite_store(settings: Settings) -> SessionStore:
    from genai_factory.memory.sqlite_store import SqliteSessionStore

    limits = Limits.from_settings(settings)
    return SqliteSessionStore(
        settings.data_dir / "sessions.db",
        max_messages=limits.messages,
        max_tokens=limits.tokens,
        ttl_s=limits.ttl_s,
    )


def redis_store(settings: Settings) -> SessionStore:
    url = settings.memory_redis_url()
    if url is None:
        raise ConfigurationError("memory.backend=redis needs memory.redis_url or gateway.redis_url")
    from redis.asyncio import Redis

    from genai_factory.memory.redis_store import RedisSessionStore

    try:
        client: Redis = Redis.from_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL for sessions: {exc}") from exc
    limits = Limits.from_settings(settings)
    return RedisSessionStore(
        client,
        prefix=settings.gateway.redis_prefix,
        max_messages=limits.messages,
        max_tokens=limits.tokens,
        ttl_s=limits.ttl_s,
    )
