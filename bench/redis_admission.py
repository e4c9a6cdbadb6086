"""Admission and settlement of one model call in Redis: one script per decision vs one per call.

Times, one request at a time and interleaved in the same process against a real Redis, what a
request with requests-per-minute, tokens-per-minute and a budget costs the gateway in Redis:

* ``separate``: the single-decision scripts, awaited one after the other as the gateway did before
  the combined script (rpm acquire, tpm acquire, budget reserve; then budget settle, tpm adjust);
* ``combined``: ``RedisAdmission.admit`` (one script) and ``RedisAdmission.settle`` (one script).

Each request uses a fresh API key id (empty logs), so the figures are the round trips and the
scripts' own work, not the cost of scanning a full window. Keys are deleted afterwards.

    python bench/redis_admission.py --requests 2000 --redis-url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from redis.asyncio import Redis

from genai_factory.gateway.admission import BudgetAsk
from genai_factory.gateway.redis_backends import (
    RedisAdmission,
    RedisBudgetCounter,
    RedisRateLimiter,
    open_redis,
)

WINDOW_S = 60.0
RPM, TPM, TOKENS = 1_000, 1_000_000, 1_000
BUDGET, AMOUNT, TTL_S = 10**12, 5_000_000, 86_400


async def separate(
    limiter: RedisRateLimiter, counter: RedisBudgetCounter, key_id: str
) -> tuple[float, float]:
    started = time.perf_counter()
    assert (await limiter.acquire(f"{key_id}:rpm", 1, RPM, WINDOW_S)).allowed
    tpm = await limiter.acquire(f"{key_id}:tpm", TOKENS, TPM, WINDOW_S)
    assert tpm.allowed
    await counter.reserve(f"{key_id}:p", AMOUNT, BUDGET, TTL_S, 0)
    admitted = time.perf_counter()
    await counter.settle(f"{key_id}:p", -AMOUNT // 2)
    await limiter.adjust(f"{key_id}:tpm", tpm.ticket, TOKENS // 2)
    return admitted - started, time.perf_counter() - admitted


async def combined(admission: RedisAdmission, key_id: str) -> tuple[float, float]:
    ask = BudgetAsk(f"{key_id}:p", AMOUNT, BUDGET, TTL_S, 0)
    started = time.perf_counter()
    decision = await admission.admit(
        key_id, rpm=RPM, tpm=TPM, tokens=TOKENS, budget=ask, window_s=WINDOW_S
    )
    assert decision.refused is None
    admitted = time.perf_counter()
    await admission.settle(
        key_id,
        tpm_ticket=decision.tpm_ticket,
        tokens=TOKENS // 2,
        account=ask.account,
        delta=-AMOUNT // 2,
    )
    return admitted - started, time.perf_counter() - admitted


def _us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


async def main(requests: int, url: str) -> None:
    client: Redis = await open_redis(url)
    prefix = f"gfbench:{uuid.uuid4().hex[:8]}:"
    limiter = RedisRateLimiter(client, prefix=prefix)
    counter = RedisBudgetCounter(client, prefix=prefix)
    admission = RedisAdmission(client, prefix=prefix)
    timings: dict[str, list[tuple[float, float]]] = {"separate": [], "combined": []}
    try:
        for i in range(50):  # warm up: scripts loaded, connections open
            await separate(limiter, counter, f"w{i}")
            await combined(admission, f"v{i}")
        for i in range(requests):
            runs = [
                ("separate", lambda i=i: separate(limiter, counter, f"s{i}")),
                ("combined", lambda i=i: combined(admission, f"c{i}")),
            ]
            for name, run in runs if i % 2 == 0 else runs[::-1]:
                timings[name].append(await run())
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()
    print(f"{requests} requests each, one at a time, Redis at {url}")
    print(f"{'':10} {'admit (us)':>11} {'settle (us)':>12} {'total (us)':>11}  medians")
    medians = {}
    for name, pairs in timings.items():
        admit = [a for a, _ in pairs]
        settle = [s for _, s in pairs]
        total = [a + s for a, s in pairs]
        medians[name] = (_us(admit), _us(settle), _us(total))
        print(
            f"{name:10} {medians[name][0]:11.1f} {medians[name][1]:12.1f} {medians[name][2]:11.1f}"
        )
    ratios = [s / c for s, c in zip(medians["separate"], medians["combined"], strict=True)]
    print(
        f"{'ratio':10} {ratios[0]:10.2f}x {ratios[1]:11.2f}x {ratios[2]:10.2f}x  "
        "(separate / combined)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.redis_url))
