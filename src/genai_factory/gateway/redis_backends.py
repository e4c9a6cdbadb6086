"""Rate limits and budget counters in Redis, so they hold across replicas.

Each decision is one Lua script, which Redis runs atomically: the sliding-window check-and-log of
:mod:`~genai_factory.gateway.ratelimit` (times from Redis's own clock, so replicas with skewed
clocks agree) and the budget check-and-reserve of :mod:`~genai_factory.gateway.budgets`. Each
script touches one key, so the keys may live on any shard of a cluster.

Keys (``prefix`` from ``gateway.redis_prefix``): ``<prefix>rl:<key id>:rpm|tpm`` (sorted set,
members ``<ticket>:<weight>`` scored by admission time in ms) and ``<prefix>budget:<key id>:<period>``
(integer nano-dollars). Redis errors become :class:`ServiceNotReady` (503) here, in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from genai_factory.exceptions import ConfigurationError, ServiceNotReady
from genai_factory.gateway.budgets import Outcome
from genai_factory.gateway.ratelimit import Admission

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], ':(%d+)$'))
end
if used + weight <= limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
if weight > limit then
  return {0, -1}
end
local excess = used + weight - limit
local freed = 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= excess then
    return {0, tonumber(entries[i + 1]) + window - now}
  end
end
return {0, window}
"""

ADJUST = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[1], score, ARGV[2])
end
return 0
"""

RESERVE = """
local current = redis.call('GET', KEYS[1])
if not current then
  if ARGV[4] == '' then
    return {-1, 0}
  end
  redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[3])
  current = ARGV[4]
end
current = tonumber(current)
local amount = tonumber(ARGV[1])
if current + amount > tonumber(ARGV[2]) then
  return {0, current}
end
return {1, redis.call('INCRBY', KEYS[1], amount)}
"""

SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('INCRBY', KEYS[1], ARGV[1]) < 0 then
    redis.call('SET', KEYS[1], 0, 'KEEPTTL')
  end
end
return 0
"""

MAX_CONNECTIONS = 32
POOL_TIMEOUT_S = 10.0
#: Maintenance notifications (a Redis Enterprise feature) off. With them on, or left to redis-py's
#: "auto", the pool skips its check that a pooled connection was not closed by the server while
#: idle, so after a Redis restart each such connection fails the first command sent on it (a 503),
#: whenever that comes. With them off, the pool reconnects before sending.
NO_MAINTENANCE_NOTIFICATIONS = MaintNotificationsConfig(enabled=False)

_OUTCOMES = {-1: Outcome.UNSEEDED, 0: Outcome.REFUSED, 1: Outcome.RESERVED}


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise ServiceNotReady(f"the limits store (Redis) is unavailable: {exc}") from exc


async def open_redis(url: str) -> Redis:
    """A client for ``url``, checked with a ping. Its pool makes a burst of requests wait for one
    of :data:`MAX_CONNECTIONS` connections (at most :data:`POOL_TIMEOUT_S`) rather than fail.

    Raises:
        ConfigurationError: the URL is invalid or Redis does not answer.
    """
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_S,
            maint_notifications_config=NO_MAINTENANCE_NOTIFICATIONS,
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid gateway.redis_url: {exc}") from exc
    client: Redis = Redis.from_pool(pool)  # closing the client closes the pool
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        raise ConfigurationError(f"cannot reach Redis at gateway.redis_url: {exc}") from exc
    return client


class RedisRateLimiter:
    """The sliding-window log as Redis sorted sets (see the module docstring)."""

    def __init__(self, client: Redis, *, prefix: str = "gf:") -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(ACQUIRE)
        self._adjust = client.register_script(ADJUST)

    def _key(self, bucket: str) -> str:
        return f"{self.prefix}rl:{bucket}"

    async def acquire(self, bucket: str, weight: int, limit: int, window_s: float) -> Admission:
        ticket = f"{uuid.uuid4().hex}:{weight}"
        window_ms = max(1, round(window_s * 1000))
        with _translated():
            raw: Any = await self._acquire(
                keys=[self._key(bucket)], args=[weight, limit, window_ms, ticket]
            )
        allowed, wait_ms = int(raw[0]), int(raw[1])
        if allowed:
            return Admission(True, 0.0, ticket)
        return Admission(False, float("inf") if wait_ms < 0 else wait_ms / 1000)

    async def adjust(self, bucket: str, ticket: str, weight: int) -> None:
        new_member = f"{ticket.rsplit(':', 1)[0]}:{max(0, weight)}"
        with _translated():
            await self._adjust(keys=[self._key(bucket)], args=[ticket, new_member])

    async def aclose(self) -> None:
        """Nothing to do: the client belongs to whoever opened it."""


class RedisBudgetCounter:
    """Budget counters as Redis integers, reserved by a check-and-add script."""

    def __init__(self, client: Redis, *, prefix: str = "gf:") -> None:
        self.client = client
        self.prefix = prefix
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)

    def _key(self, account: str) -> str:
        return f"{self.prefix}budget:{account}"

    async def reserve(
        self, account: str, amount: int, limit: int, ttl_s: int, seed: int | None
    ) -> tuple[Outcome, int]:
        args = [amount, limit, max(1, ttl_s), "" if seed is None else seed]
        with _translated():
            raw: Any = await self._reserve(keys=[self._key(account)], args=args)
        return _OUTCOMES[int(raw[0])], int(raw[1])

    async def settle(self, account: str, delta: int) -> None:
        with _translated():
            await self._settle(keys=[self._key(account)], args=[delta])

    async def aclose(self) -> None:
        """Nothing to do: the client belongs to whoever opened it."""
