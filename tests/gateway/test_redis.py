"""Rate limits and budget counters in a real Redis (127.0.0.1:6379, DB 15, a prefix per test)."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from genai_factory.exceptions import ConfigurationError, ServiceNotReady
from genai_factory.gateway.admission import BudgetAsk, Refusal
from genai_factory.gateway.budgets import Outcome
from genai_factory.gateway.redis_backends import (
    ADMIT,
    SETTLE_CALL,
    RedisAdmission,
    RedisBudgetCounter,
    RedisRateLimiter,
    open_redis,
)

from .conftest import PRICED_MODEL, REDIS_URL, add_key, priced_settings
from .test_http import bearer, error_of, started, wait_ready

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
    assert 0 < await client.pttl(f"{redis_prefix}{{k}}:tpm") <= 300


async def test_budget_reservations_are_atomic(client: Redis, redis_prefix: str) -> None:
    counter = RedisBudgetCounter(client, prefix=redis_prefix)
    assert await counter.reserve("k:2026-11", 7, 70, 60, None) == (Outcome.UNSEEDED, 0)
    results = await asyncio.gather(
        *(counter.reserve("k:2026-11", 7, 70, 60, 0) for _ in range(200))
    )
    assert sum(outcome is Outcome.RESERVED for outcome, _ in results) == 10
    assert all(value <= 70 for _, value in results)
    assert int(await client.get(f"{redis_prefix}{{k}}:budget:2026-11") or 0) == 70
    await counter.settle("k:2026-11", -20)
    assert await counter.reserve("k:2026-11", 20, 70, 60, None) == (Outcome.RESERVED, 70)
    await counter.settle("k:2026-11", -1000)
    assert int(await client.get(f"{redis_prefix}{{k}}:budget:2026-11") or 0) == 0
    assert 0 < await client.ttl(f"{redis_prefix}{{k}}:budget:2026-11") <= 60
    await counter.settle("missing", 5)  # never creates a counter without a TTL
    assert await client.exists(f"{redis_prefix}{{missing}}:budget:") == 0


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
        admission = RedisAdmission(broken)
        with pytest.raises(ServiceNotReady, match="Redis"):
            await admission.admit("k", rpm=1, tpm=None, tokens=1, budget=None, window_s=60)
        with pytest.raises(ServiceNotReady, match="Redis"):
            await admission.settle("k", tpm_ticket="t:1", tokens=1, account="k:p", delta=1)
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
        assert int(await client.get(f"{redis_prefix}{{acct}}:budget:p") or 0) == 160
    finally:
        await client.aclose()


# -- one script per admission -----------------------------------------------------------------


def _ask(amount: int, limit: int, seed: int | None = 0) -> BudgetAsk:
    return BudgetAsk("k:2026-12", amount, limit, 60, seed)


async def _state(client: Redis, prefix: str) -> tuple[int, int, int]:
    """Entries in the rpm and tpm logs of key ``k``, and its budget counter."""
    rpm = await client.zcard(f"{prefix}{{k}}:rpm")
    tpm = await client.zcard(f"{prefix}{{k}}:tpm")
    return rpm, tpm, int(await client.get(f"{prefix}{{k}}:budget:2026-12") or 0)


async def test_the_keys_of_one_api_key_share_a_cluster_slot(redis_prefix: str) -> None:
    limiter = RedisRateLimiter(Redis.from_url(REDIS_URL), prefix="gf:")
    counter = RedisBudgetCounter(limiter.client, prefix="gf:")
    names = [limiter._key("gf_0123456789ab:rpm"), limiter._key("gf_0123456789ab:tpm")]
    names.append(counter._key("gf_0123456789ab:2026-12"))
    assert names == [
        "gf:{gf_0123456789ab}:rpm",
        "gf:{gf_0123456789ab}:tpm",
        "gf:{gf_0123456789ab}:budget:2026-12",
    ]
    assert len({key_slot(name.encode()) for name in names}) == 1
    await limiter.client.aclose()


async def test_an_admission_records_everything_or_nothing(client: Redis, redis_prefix: str) -> None:
    admission = RedisAdmission(client, prefix=redis_prefix)

    async def admit(rpm: int | None, tpm: int | None, tokens: int, ask: BudgetAsk | None) -> Any:
        return await admission.admit("k", rpm=rpm, tpm=tpm, tokens=tokens, budget=ask, window_s=60)

    # A missing budget counter without a seed: nothing is recorded, the caller seeds and retries.
    assert (await admit(5, 1000, 100, _ask(10, 25, None))).refused is Refusal.UNSEEDED
    assert await _state(client, redis_prefix) == (0, 0, 0)
    admitted = await admit(5, 1000, 100, _ask(10, 25))
    assert admitted.refused is None and admitted.budget_used == 10
    assert admitted.rpm_ticket and admitted.tpm_ticket.endswith(":100")
    assert await _state(client, redis_prefix) == (1, 1, 10)
    assert (await admit(5, 1000, 100, _ask(10, 25))).budget_used == 20
    # The budget refuses: no request and no tokens are logged.
    refused = await admit(5, 1000, 100, _ask(10, 25))
    assert (refused.refused, refused.budget_used) == (Refusal.BUDGET, 20)
    assert await _state(client, redis_prefix) == (2, 2, 20)
    # The tokens refuse: no request logged, no budget reserved.
    refused = await admit(5, 1000, 900, _ask(1, 25))
    assert refused.refused is Refusal.TPM and 0 < refused.retry_after_s <= 60
    assert math.isinf((await admit(5, 1000, 1001, _ask(1, 25))).retry_after_s)
    assert await _state(client, redis_prefix) == (2, 2, 20)
    # Requests per minute refuse: no tokens logged, no budget reserved.
    assert (await admit(3, 1000, 1, _ask(1, 25))).refused is None
    assert await _state(client, redis_prefix) == (3, 3, 21)
    refused = await admit(3, 1000, 1, _ask(1, 25))
    assert refused.refused is Refusal.RPM and 59 < refused.retry_after_s <= 60
    assert await _state(client, redis_prefix) == (3, 3, 21)
    # Limits left out are neither checked nor logged.
    assert (await admit(None, None, 10**9, _ask(4, 25))).refused is None
    assert await _state(client, redis_prefix) == (3, 3, 25)
    assert 0 < await client.pttl(f"{redis_prefix}{{k}}:rpm") <= 60_000


async def test_a_settlement_corrects_tokens_and_budget_in_one_call(
    client: Redis, redis_prefix: str
) -> None:
    admission = RedisAdmission(client, prefix=redis_prefix)
    limiter = RedisRateLimiter(client, prefix=redis_prefix)
    held = await admission.admit(
        "k", rpm=None, tpm=1000, tokens=700, budget=_ask(50, 100), window_s=60
    )
    await admission.settle(
        "k", tpm_ticket=held.tpm_ticket, tokens=100, account="k:2026-12", delta=-30
    )
    assert await _state(client, redis_prefix) == (0, 1, 20)
    # The single-decision scripts read the same keys.
    assert (await limiter.acquire("k:tpm", 900, 1000, 60)).allowed
    assert not (await limiter.acquire("k:tpm", 1, 1000, 60)).allowed
    await admission.settle("k", tpm_ticket="", tokens=0, account="k:2026-12", delta=-1000)
    assert await _state(client, redis_prefix) == (0, 2, 0)
    assert 0 < await client.ttl(f"{redis_prefix}{{k}}:budget:2026-12") <= 60
    await admission.settle("gone", tpm_ticket="x:5", tokens=1, account="gone:p", delta=5)
    assert (
        await client.exists(f"{redis_prefix}{{gone}}:budget:p", f"{redis_prefix}{{gone}}:tpm") == 0
    )


async def test_two_clients_never_over_admit_or_overspend(client: Redis, redis_prefix: str) -> None:
    other = Redis.from_url(REDIS_URL)
    try:
        replicas = [
            RedisAdmission(client, prefix=redis_prefix),
            RedisAdmission(other, prefix=redis_prefix),
        ]

        async def burst(count: int, rpm: int, tpm: int, tokens: int, ask: BudgetAsk) -> list[Any]:
            return await asyncio.gather(
                *(
                    replicas[i % 2].admit(
                        "k", rpm=rpm, tpm=tpm, tokens=tokens, budget=ask, window_s=60
                    )
                    for i in range(count)
                )
            )

        # The budget is the tightest: 30 reservations of 7 fit in 210.
        decisions = await burst(150, 60, 10_000, 10, _ask(7, 210))
        assert sum(d.refused is None for d in decisions) == 30
        assert {d.refused for d in decisions} == {None, Refusal.BUDGET}
        assert await _state(client, redis_prefix) == (30, 30, 210)
        # Now requests per minute are: 30 more fit in 60.
        decisions = await burst(150, 60, 10_000, 10, _ask(1, 10**6))
        assert sum(d.refused is None for d in decisions) == 30
        assert await _state(client, redis_prefix) == (60, 60, 240)
    finally:
        await other.aclose()


# -- through the service ----------------------------------------------------------------------

CHAT = "/v1/chat/completions"


def _chat(max_tokens: int = 20) -> dict[str, Any]:
    return {
        "model": PRICED_MODEL,
        "messages": [{"role": "user", "content": "What does the gateway do?"}],
        "max_tokens": max_tokens,
    }


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def test_a_chat_completion_is_admitted_in_one_round_trip(
    tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = priced_settings(
        tmp_path, gateway={"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    )
    record, key = add_key(settings.gateway_database_url(), rpm=3, tpm=10_000, budget_usd=5.0)
    sent: list[tuple[Any, ...]] = []
    original = Redis.execute_command

    async def counted(self: Redis, *args: Any, **options: Any) -> Any:
        if any(isinstance(arg, str) and arg.startswith(redis_prefix) for arg in args):
            sent.append(args)
        return await original(self, *args, **options)

    monkeypatch.setattr(Redis, "execute_command", counted)
    admit, settle = _sha(ADMIT), _sha(SETTLE_CALL)
    with started(settings) as client:
        wait_ready(client)
        assert client.post(CHAT, json=_chat(), headers=bearer(key)).status_code == 200
        for _ in range(2):
            sent.clear()
            assert client.post(CHAT, json=_chat(), headers=bearer(key)).status_code == 200
            # One call to admit (rpm, tpm and budget), one to settle (tpm and budget).
            assert [(args[0], args[1]) for args in sent] == [
                ("EVALSHA", admit),
                ("EVALSHA", settle),
            ]
        response = client.post(CHAT, json=_chat(), headers=bearer(key))
        assert "3 requests per minute" in error_of(response, 429, "rate_limit_exceeded")["message"]
        assert 55 <= int(response.headers["retry-after"]) <= 60

    async def state() -> tuple[int, int, int]:
        redis = Redis.from_url(REDIS_URL)
        try:
            rpm = await redis.zcard(f"{redis_prefix}{{{record.id}}}:rpm")
            tpm = await redis.zcard(f"{redis_prefix}{{{record.id}}}:tpm")
            budget = [
                k async for k in redis.scan_iter(match=f"{redis_prefix}{{{record.id}}}:budget:*")
            ]
            return rpm, tpm, len(budget)
        finally:
            await redis.aclose()

    assert asyncio.run(state()) == (3, 3, 1)


def test_requests_refused_or_without_a_model_call_still_count(
    tmp_path: Path, redis_prefix: str
) -> None:
    settings = priced_settings(
        tmp_path, gateway={"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    )
    _, poor = add_key(settings.gateway_database_url(), rpm=2, budget_usd=1e-9)
    _, rpm2 = add_key(settings.gateway_database_url(), rpm=2)
    with started(settings) as client:
        wait_ready(client)
        # The budget refuses the model call (nothing recorded with it); the request counts.
        for _ in range(2):
            error_of(client.post(CHAT, json=_chat(), headers=bearer(poor)), 402, "budget_exceeded")
        error_of(client.post(CHAT, json=_chat(), headers=bearer(poor)), 429, "rate_limit_exceeded")
        # An invalid body makes no model call; it counts, and over the limit it gets the 429.
        assert (
            client.post(CHAT, json={"model": PRICED_MODEL}, headers=bearer(rpm2)).status_code == 422
        )
        assert client.post(CHAT, json=_chat(), headers=bearer(rpm2)).status_code == 200
        response = client.post(CHAT, json={"model": PRICED_MODEL}, headers=bearer(rpm2))
        error_of(response, 429, "rate_limit_exceeded")
        # An assistant turn (a mode) counts before it may retrieve.
        body = {**_chat(), "mode": "chat"}
        error_of(client.post(CHAT, json=body, headers=bearer(rpm2)), 429, "rate_limit_exceeded")
