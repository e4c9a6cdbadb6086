"""Rate limits and budget counters in a real Redis (127.0.0.1:6379, DB 15, a prefix per test)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from genai_factory.exceptions import ConfigurationError, ServiceNotReady
from genai_factory.gateway.budgets import Outcome
from genai_factory.gateway.redis_backends import RedisBudgetCounter, RedisRateLimiter, open_redis

from .conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    opened = await open_redis(REDIS_URL)
    yield opened
    await opened.aclose()


async def test_limits_are_exact_under_concurrency(client: Redis, redis_prefix: str) -> None:
    # Two limiters on two connections stand for two replicas.
    other = Redis.from_url(REDIS_URL)
    try:
        replicas = [
            RedisRateLimiter(client, prefix=redis_prefix),
            RedisRateLimiter(other, prefix=redis_prefix),
        ]
        results = await asyncio.gather(
            *(replicas[i % 2].acquire("k:rpm", 1, 60, 60) for i in range(150))
        )
    finally:
        await other.aclose()
    assert sum(r.allowed for r in results) == 60
    refused = [r for r in results if not r.allowed]
    assert all(0 < r.retry_after_s <= 60 for r in refused)


async def test_windows_slide_and_weights_add_up(client: Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(client, prefix=redis_prefix)
    first = await limiter.acquire("k:tpm", 700, 1000, 0.3)
    assert first.allowed
    refused = await limiter.acquire("k:tpm", 400, 1000, 0.3)
    assert not refused.allowed and 0 < refused.retry_after_s <= 0.3
    assert math.isinf((await limiter.acquire("k:tpm", 1001, 1000, 0.3)).retry_after_s)
    await limiter.adjust("k:tpm", first.ticket, 100)  # the call used fewer tokens than reserved
    assert (await limiter.acquire("k:tpm", 400, 1000, 0.3)).allowed
    await asyncio.sleep(0.35)
    assert (await limiter.acquire("k:tpm", 1000, 1000, 0.3)).allowed
    assert 0 < await client.pttl(f"{redis_prefix}rl:k:tpm") <= 300


async def test_budget_reservations_are_atomic(client: Redis, redis_prefix: str) -> None:
    counter = RedisBudgetCounter(client, prefix=redis_prefix)
    assert await counter.reserve("k:2026-11", 7, 70, 60, None) == (Outcome.UNSEEDED, 0)
    results = await asyncio.gather(
        *(counter.reserve("k:2026-11", 7, 70, 60, 0) for _ in range(200))
    )
    assert sum(outcome is Outcome.RESERVED for outcome, _ in results) == 10
    assert all(value <= 70 for _, value in results)
    assert int(await client.get(f"{redis_prefix}budget:k:2026-11") or 0) == 70
    await counter.settle("k:2026-11", -20)
    assert await counter.reserve("k:2026-11", 20, 70, 60, None) == (Outcome.RESERVED, 70)
    await counter.settle("k:2026-11", -1000)
    assert int(await client.get(f"{redis_prefix}budget:k:2026-11") or 0) == 0
    assert 0 < await client.ttl(f"{redis_prefix}budget:k:2026-11") <= 60
    await counter.settle("missing", 5)  # never creates a counter without a TTL
    assert await client.exists(f"{redis_prefix}budget:missing") == 0


async def test_a_seed_is_used_once(client: Redis, redis_prefix: str) -> None:
    counter = RedisBudgetCounter(client, prefix=redis_prefix)
    assert await counter.reserve("s", 5, 100, 60, 90) == (Outcome.RESERVED, 95)
    assert await counter.reserve("s", 5, 100, 60, 0) == (Outcome.RESERVED, 100)
    assert await counter.reserve("s", 1, 100, 60, 0) == (Outcome.REFUSED, 100)


async def test_redis_outages_are_translated() -> None:
    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        await open_redis("redis://127.0.0.1:1/0")
    broken = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(ServiceNotReady, match="Redis"):
            await RedisRateLimiter(broken).acquire("k", 1, 1, 60)
        with pytest.raises(ServiceNotReady, match="Redis"):
            await RedisBudgetCounter(broken).reserve("k", 1, 1, 60, 0)
    finally:
        await broken.aclose()


async def _kill_pooled_connections(client: Redis) -> int:
    """Close, from the server's side, every connection idle in ``client``'s pool (as a restart does)."""
    pool: Any = client.connection_pool
    addresses = []
    for connection in pool._available_connections:
        host, port = connection._writer.get_extra_info("sockname")[:2]
        addresses.append(f"{host}:{port}")
    killer = Redis.from_url(REDIS_URL)
    try:
        for address in addresses:
            await killer.client_kill(address)
    finally:
        await killer.aclose()
    await asyncio.sleep(0.05)  # the closes reach the pool's sockets
    return len(addresses)


async def test_connections_closed_by_the_server_are_replaced_before_use(redis_prefix: str) -> None:
    # A Redis restart closes every pooled connection while it is idle; the next requests must be
    # served on new connections, not fail once per stale connection.
    client = await open_redis(REDIS_URL)
    try:
        limiter = RedisRateLimiter(client, prefix=redis_prefix)
        budgets = RedisBudgetCounter(client, prefix=redis_prefix)
        await asyncio.gather(*(limiter.acquire("k:rpm", 1, 10_000, 60) for _ in range(16)))
        assert await _kill_pooled_connections(client) >= 8
        admissions = await asyncio.gather(
            *(limiter.acquire("k:rpm", 1, 10_000, 60) for _ in range(16))
        )
        assert all(admission.allowed for admission in admissions)
        await _kill_pooled_connections(client)
        outcomes = await asyncio.gather(
            *(budgets.reserve("acct:p", 10, 1_000, 60, 0) for _ in range(16))
        )
        assert all(outcome == Outcome.RESERVED for outcome, _ in outcomes)
        assert int(await client.get(f"{redis_prefix}budget:acct:p") or 0) == 160
    finally:
        await client.aclose()
