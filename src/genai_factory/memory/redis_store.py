"""Session history in Redis, so a conversation follows its client across replicas.

Keys (``prefix`` from ``gateway.redis_prefix``): ``<prefix>session:{<id>}`` (a hash: ``owner``,
``updated``) and ``<prefix>session:{<id>}:messages`` (a list of JSON messages, newest last). The
braces make both keys one hash slot, so the claim script and the append transaction also work on a
Redis cluster. Both keys expire ``ttl_s`` after the last use. Redis errors become
:class:`ServiceNotReady` (503) here, in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from genai_factory.exceptions import ServiceNotReady
from genai_factory.memory.protocol import (
    SessionInfo,
    check_owner,
    keep_count,
    recent_within_budget,
)
from genai_factory.messages import Message

#: Create the session for ARGV[1] unless it exists; touch it; answer its owner.
CLAIM = """
redis.call('HSETNX', KEYS[1], 'owner', ARGV[1])
redis.call('HSET', KEYS[1], 'updated', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return redis.call('HGET', KEYS[1], 'owner')
"""
#: A session created while auth was off has this owner in Redis (a key id is never empty).
NO_OWNER = ""


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise ServiceNotReady(f"the session store (Redis) is unavailable: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _info(session_id: str, owner: Any, updated: Any) -> SessionInfo:
    owner_text = _text(owner)
    stamp = None
    if updated is not None:
        stamp = datetime.fromtimestamp(float(_text(updated)), UTC).replace(tzinfo=None)
    return SessionInfo(session_id, owner_text or None, stamp)


class RedisSessionStore:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in Redis. It closes ``client``."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "gf:",
        max_messages: int = 8,
        max_tokens: int = 600,
        ttl_s: int = 7 * 86_400,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.ttl_s = ttl_s
        self._claim = client.register_script(CLAIM)

    def _keys(self, session_id: str) -> tuple[str, str]:
        meta = f"{self.prefix}session:{{{session_id}}}"
        return meta, f"{meta}:messages"

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo:
        args: list[str | int | float] = [owner or NO_OWNER, self.ttl_s, time.time()]
        with _translated():
            found: Any = await self._claim(keys=list(self._keys(session_id)), args=args)
        info = _info(session_id, found, time.time())
        check_owner(info, owner)
        return info

    async def info(self, session_id: str) -> SessionInfo | None:
        with _translated():
            fields: Any = await self.client.hgetall(self._keys(session_id)[0])
        if not fields:
            return None
        values = {_text(k): v for k, v in fields.items()}
        return _info(session_id, values.get("owner", b""), values.get("updated"))

    async def messages(self, session_id: str) -> list[Message]:
        with _translated():
            raw: Any = await self.client.lrange(self._keys(session_id)[1], 0, -1)
        return [Message.model_validate_json(item) for item in raw]

    async def get(self, session_id: str) -> list[Message]:
        return recent_within_budget(
            await self.messages(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        meta, log = self._keys(session_id)
        with _translated():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(meta, "owner", NO_OWNER)
                pipe.hset(meta, "updated", time.time())
                pipe.rpush(log, *(m.model_dump_json(exclude_defaults=True) for m in messages))
                pipe.ltrim(log, -keep_count(self.max_messages), -1)
                pipe.expire(meta, self.ttl_s)
                pipe.expire(log, self.ttl_s)
                await pipe.execute()

    async def delete(self, session_id: str) -> bool:
        meta, log = self._keys(session_id)
        with _translated():
            removed: Any = await self.client.delete(meta, log)
        return int(removed) > 0

    async def aclose(self) -> None:
        await self.client.aclose()
