"""Build the configured session store: the one place that maps ``memory.backend`` to a class.

Building opens nothing: the SQLite file is opened on first use and the Redis client connects on
its first command, so this can run while the components are assembled.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionStore


def session_backend(settings: Settings) -> str:
    """``memory``, ``sqlite`` or ``redis``: ``auto`` is Redis when a Redis URL is configured."""
    backend = settings.memory.backend
    if backend == "auto":
        return "redis" if settings.memory_redis_url() else "sqlite"
    return backend


def build_session_store(settings: Settings) -> SessionStore:
    """The session store named by ``settings.memory`` (close it with ``aclose``).

    Raises:
        ConfigurationError: ``memory.backend=redis`` without a Redis URL, or an invalid URL.
    """
    memory = settings.memory
    limits = Limits(settings.service.max_history_messages, memory.max_tokens, memory.ttl_s)
    backend = session_backend(settings)
    if backend == "memory":
        return InMemoryHistory(
            max_messages=limits.messages, max_tokens=limits.tokens, ttl_s=limits.ttl_s
        )
    if backend == "sqlite":
        from genai_factory.memory.sqlite_store import SqliteSessionStore

        return SqliteSessionStore(
            settings.data_dir / "sessions.db",
            max_messages=limits.messages,
            max_tokens=limits.tokens,
            ttl_s=limits.ttl_s,
        )
    return _redis_store(settings, limits)


@dataclass(frozen=True)
class Limits:
    messages: int
    tokens: int
    ttl_s: int


def _redis_store(settings: Settings, limits: Limits) -> SessionStore:
    url = settings.memory_redis_url()
    if url is None:
        raise ConfigurationError("memory.backend=redis needs memory.redis_url or gateway.redis_url")
    from redis.asyncio import Redis

    from genai_factory.memory.redis_store import RedisSessionStore

    try:
        client: Redis = Redis.from_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL for sessions: {exc}") from exc
    return RedisSessionStore(
        client,
        prefix=settings.gateway.redis_prefix,
        max_messages=limits.messages,
        max_tokens=limits.tokens,
        ttl_s=limits.ttl_s,
    )
