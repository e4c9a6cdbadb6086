"""Rate limits and budget counters in Redis, so they hold across replicas.

Every script reads Redis's own clock (so replicas with skewed clocks agree) and Redis runs each
one atomically. :data:`ADMIT` is the admission of one model call of one key in one round trip: the
sliding-window check of :mod:`~genai_factory.gateway.ratelimit` for requests per minute, the same
for tokens per minute, and the budget check-and-reserve of :mod:`~genai_factory.gateway.budgets`,
recorded all together or, when one refuses, not at all. :data:`SETTLE_CALL` settles the call (the
tokens entry's real weight, the budget's real cost) in one round trip too. The single-decision
scripts (:data:`ACQUIRE`, :data:`ADJUST`, :data:`RESERVE`, :data:`SETTLE`) serve a request that
counts without a model call, and the limiter and counter protocols.

Keys (``prefix`` from ``gateway.redis_prefix``), all of one API key in one Redis Cluster hash slot
(the hash tag ``{<key id>}``): ``<prefix>{<key id>}:rpm`` and ``<prefix>{<key id>}:tpm`` (sorted
sets, members ``<ticket>:<weight>`` scored by admission time in ms) and
``<prefix>{<key id>}:budget:<period>`` (integer nano-dollars). Redis errors become
:class:`ServiceNotReady` (503) here, in one place.
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
from genai_factory.gateway.admission import BudgetAsk, Decision, Refusal
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

#: KEYS: rpm log, tpm log, budget counter. ARGV: window (ms); rpm limit ('' for none), rpm member;
#: tpm limit ('' for none), tokens, tpm member; budget amount ('' for none), limit, TTL (s), seed ('' for
#: none). Returns ``{0, budget value}`` when all is recorded, else ``{1 | 2, wait ms}`` (rpm | tpm
#: refused; -1: never fits), ``{3, budget value}`` (budget refused) or ``{4, 0}`` (budget unseeded).
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local function weigh(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local used = 0
  for i = 1, #entries, 2 do
    used = used + tonumber(string.match(entries[i], ':(%d+)$'))
  end
  return entries, used
end
local function wait(entries, used, weight, limit)
  if weight > limit then
    return -1
  end
  local excess = used + weight - limit
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
    if freed >= excess then
      return tonumber(entries[i + 1]) + window - now
    end
  end
  return window
end
if ARGV[2] ~= '' then
  local limit = tonumber(ARGV[2])
  local entries, used = weigh(KEYS[1])
  if used + 1 > limit then
    return {1, wait(entries, used, 1, limit)}
  end
end
if ARGV[4] ~= '' then
  local limit = tonumber(ARGV[4])
  local weight = tonumber(ARGV[5])
  local entries, used = weigh(KEYS[2])
  if used + weight > limit then
    return {2, wait(entries, used, weight, limit)}
  end
end
local value = 0
if ARGV[7] ~= '' then
  local current = redis.call('GET', KEYS[3])
  if not current then
    if ARGV[10] == '' then
      return {4, 0}
    end
    redis.call('SET', KEYS[3], ARGV[10], 'EX', ARGV[9])
    current = ARGV[10]
  end
  current = tonumber(current)
  if current + tonumber(ARGV[7]) > tonumber(ARGV[8]) then
    return {3, current}
  end
end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[2], window)
end
if ARGV[7] ~= '' then
  value = redis.call('INCRBY', KEYS[3], ARGV[7])
end
return {0, value}
"""

#: KEYS: tpm log, budget counter. ARGV: tpm ticket ('' for none), its new member; budget delta
#: ('' for none). :data:`ADJUST` then :data:`SETTLE`, in one script.
SETTLE_CALL = """
if ARGV[1] ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if score then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('ZADD', KEYS[1], score, ARGV[2])
  end
end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('INCRBY', KEYS[2], ARGV[3]) < 0 then
    redis.call('SET', KEYS[2], 0, 'KEEPTTL')
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
_REFUSALS = {1: Refusal.RPM, 2: Refusal.TPM, 3: Refusal.BUDGET, 4: Refusal.UNSEEDED}


def limit_key(prefix: str, bucket: str) -> str:
    """The sorted set of ``bucket`` (``<key id>:rpm|tpm``): ``<prefix>{<key id>}:rpm|tpm``."""
    key_id, _, kind = bucket.partition(":")
    return f"{prefix}{{{key_id}}}:{kind}" if kind else f"{prefix}{{{bucket}}}"


def budget_key(prefix: str, account: str) -> str:
    """The counter of ``account`` (``<key id>:<period>``): ``<prefix>{<key id>}:budget:<period>``."""
    key_id, _, period = account.partition(":")
    return f"{prefix}{{{key_id}}}:budget:{period}"


def _ticket(weight: int) -> str:
    return f"{uuid.uuid4().hex}:{weight}"


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
        return limit_key(self.prefix, bucket)

    async def acquire(self, bucket: str, weight: int, limit: int, window_s: float) -> Admission:
        ticket = _ticket(weight)
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
        return budget_key(self.prefix, account)

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


class RedisAdmission:
    """A model call's rate limits and budget in one script call, settled in one
    (:class:`~genai_factory.gateway.admission.KeyAdmission`; the keys are those of
    :class:`RedisRateLimiter` and :class:`RedisBudgetCounter`, which it may be mixed with)."""

    def __init__(self, client: Redis, *, prefix: str = "gf:") -> None:
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE_CALL)

    def _keys(self, key_id: str, account: str | None) -> list[str]:
        budget = budget_key(self.prefix, account or f"{key_id}:")
        return [f"{self.prefix}{{{key_id}}}:rpm", f"{self.prefix}{{{key_id}}}:tpm", budget]

    async def admit(
        self,
        key_id: str,
        *,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        budget: BudgetAsk | None,
        window_s: float,
    ) -> Decision:
        rpm_ticket = _ticket(1) if rpm is not None else ""
        tpm_ticket = _ticket(tokens) if tpm is not None else ""
        args: list[str | int] = [max(1, round(window_s * 1000))]
        args += ["", ""] if rpm is None else [rpm, rpm_ticket]
        args += ["", 0, ""] if tpm is None else [tpm, tokens, tpm_ticket]
        if budget is None:
            args += ["", 0, 1, ""]
        else:
            seed = "" if budget.seed is None else budget.seed
            args += [budget.amount, budget.limit, max(1, budget.ttl_s), seed]
        keys = self._keys(key_id, budget.account if budget is not None else None)
        with _translated():
            raw: Any = await self._admit(keys=keys, args=args)
        code, value = int(raw[0]), int(raw[1])
        if code == 0:
            return Decision(None, 0.0, value, rpm_ticket, tpm_ticket)
        refusal = _REFUSALS[code]
        if refusal in (Refusal.RPM, Refusal.TPM):
            return Decision(refusal, float("inf") if value < 0 else value / 1000)
        return Decision(refusal, 0.0, value)

    async def settle(
        self,
        key_id: str,
        *,
        tpm_ticket: str,
        tokens: int,
        account: str | None,
        delta: int,
    ) -> None:
        member = f"{tpm_ticket.rsplit(':', 1)[0]}:{max(0, tokens)}" if tpm_ticket else ""
        args = [tpm_ticket, member, "" if account is None else delta]
        with _translated():
            await self._settle(keys=self._keys(key_id, account)[1:], args=args)
