"""Session history in Redis, so a conversation follows its client across replicas.

Keys (``prefix`` from ``gateway.redis_prefix``): ``<prefix>session:{<id>}`` (a hash: ``owner``,
``updated``, ``generation``, ``start`` (the position of the first kept message), ``bytes`` (the
stored size of the kept messages), ``summary`` and ``through``) and ``<prefix>session:{<id>}:messages``
(a list of JSON messages, newest last). The braces make both keys one hash slot, so the scripts
also work on a Redis cluster. Both keys expire ``ttl_s`` after the last claim or append, so an
expired session is gone without a sweep. Every write is one script, atomic across replicas. Redis
errors become :class:`ServiceNotReady` (503) here, in one place.
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
)
from genai_factory.messages import Message

#: Create the session for ARGV[1] unless it exists; touch it; answer its owner.
CLAIM = """
redis.call('HSETNX', KEYS[1], 'owner', ARGV[1])
redis.call('HSETNX', KEYS[1], 'generation', ARGV[4])
redis.call('HSET', KEYS[1], 'updated', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return redis.call('HGET', KEYS[1], 'owner')
"""
#: Append ARGV[6..] (creating an unowned session), then drop the oldest messages until at most
#: ARGV[3] messages of at most ARGV[4] bytes in all are left; touch both keys.
APPEND = """
redis.call('HSETNX', KEYS[1], 'owner', '')
redis.call('HSETNX', KEYS[1], 'generation', ARGV[5])
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
local size = tonumber(redis.call('HGET', KEYS[1], 'bytes'))
if not size then
  size = 0
  for _, kept in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do size = size + string.len(kept) end
end
for i = 6, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  size = size + string.len(ARGV[i])
end
local count = redis.call('LLEN', KEYS[2])
local max_count, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local dropped = 0
while count > 0 and (count > max_count or size > max_bytes) do
  size = size - string.len(redis.call('LPOP', KEYS[2]))
  count = count - 1
  dropped = dropped + 1
end
redis.call('HSET', KEYS[1], 'bytes', size)
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'start', dropped) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return dropped
"""
#: Store the summary ARGV[4] covering ARGV[3] messages when the session still has generation
#: ARGV[1] and its summary still covers ARGV[2] messages (fewer than ARGV[3]).
SAVE_SUMMARY = """
if redis.call('HEXISTS', KEYS[1], 'owner') == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'generation') or '') ~= ARGV[1] then return 0 end
local covered = tonumber(redis.call('HGET', KEYS[1], 'through') or '0')
if covered ~= tonumber(ARGV[2]) or tonumber(ARGV[3]) <= covered then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[4], 'through', ARGV[3])
return 1
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


def _history(fields: dict[str, Any], raw: list[Any]) -> SessionHistory:
    summary = None
    if "summary" in fields:
        summary = Summary(_text(fields["summary"]), int(_text(fields.get("through", b"0"))))
    return SessionHistory(
        [Message.model_validate_json(item) for item in raw],
        int(_text(fields.get("start", b"0"))),
        summary,
        _text(fields.get("generation", b"")),
    )


class RedisSessionStore:
    """A :class:`~genai_factory.memory.protocol.SessionStore` in Redis. It closes ``client``.

    ``keep`` defaults to :func:`~genai_factory.memory.protocol.keep_count` messages and
    :data:`~genai_factory.memory.protocol.DEFAULT_KEEP_BYTES` bytes.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "gf:",
        max_messages: int = 8,
        max_tokens: int = 600,
        keep: SizeLimits | None = None,
        ttl_s: int = 7 * 86_400,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.keep = keep or SizeLimits(keep_count(max_messages), DEFAULT_KEEP_BYTES)
        self.ttl_s = ttl_s
        self._claim = client.register_script(CLAIM)
        self._append = client.register_script(APPEND)
        self._save_summary = client.register_script(SAVE_SUMMARY)

    def _keys(self, session_id: str) -> tuple[str, str]:
        meta = f"{self.prefix}session:{{{session_id}}}"
        return meta, f"{meta}:messages"

    async def claim(self, session_id: str, owner: str | None) -> SessionInfo:
        now = time.time()
        args: list[str | int | float] = [owner or NO_OWNER, self.ttl_s, now, new_generation()]
        with _translated():
            found: Any = await self._claim(keys=list(self._keys(session_id)), args=args)
        info = _info(session_id, found, now)
        check_owner(info, owner)
        return info

    async def info(self, session_id: str) -> SessionInfo | None:
        with _translated():
            fields: Any = await self.client.hgetall(self._keys(session_id)[0])
        if not fields:
            return None
        values = {_text(k): v for k, v in fields.items()}
        return _info(session_id, values.get("owner", b""), values.get("updated"))

    async def history(self, session_id: str) -> SessionHistory | None:
        meta, log = self._keys(session_id)
        with _translated():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(meta)
                pipe.lrange(log, 0, -1)
                fields, raw = await pipe.execute()
        if not fields:
            return None
        return _history({_text(k): v for k, v in fields.items()}, raw)

    async def messages(self, session_id: str) -> list[Message]:
        found = await self.history(session_id)
        return [] if found is None else found.messages

    async def get(self, session_id: str) -> list[Message]:
        return prompt_history(
            await self.history(session_id),
            max_messages=self.max_messages,
            max_tokens=self.max_tokens,
        )

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        args: list[str | int | float] = [
            time.time(),
            self.ttl_s,
            self.keep.messages,
            self.keep.bytes,
            new_generation(),
            *(encode_message(m) for m in messages),
        ]
        with _translated():
            await self._append(keys=list(self._keys(session_id)), args=args)

    async def save_summary(
        self, session_id: str, generation: str, summary: Summary, *, replaces: int
    ) -> bool:
        args: list[str | int | float] = [generation, replaces, summary.through, summary.text]
        with _translated():
            saved: Any = await self._save_summary(keys=[self._keys(session_id)[0]], args=args)
        return int(saved) == 1

    async def delete(self, session_id: str) -> bool:
        meta, log = self._keys(session_id)
        with _translated():
            removed: Any = await self.client.delete(meta, log)
        return int(removed) > 0

    async def aclose(self) -> None:
        await self.client.aclose()
