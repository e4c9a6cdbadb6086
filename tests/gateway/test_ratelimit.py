"""The in-process sliding-window log: exact limits over every window, Retry-After, adjustments."""

from __future__ import annotations

import asyncio
import math

from genai_factory.gateway.ratelimit import InProcessRateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_admits_up_to_the_limit_then_says_when_to_retry() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock=clock)
    for _ in range(3):
        assert (await limiter.acquire("k:rpm", 1, 3, 60)).allowed
        clock.now += 10
    refused = await limiter.acquire("k:rpm", 1, 3, 60)
    assert not refused.allowed
    assert refused.retry_after_s == 30  # the first entry (t=1000) leaves the window at t=1060


async def test_the_limit_holds_over_every_window_not_just_fixed_ones() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock=clock)
    admitted: list[float] = []
    for _ in range(600):  # one attempt every 0.5 s for 300 s
        if (await limiter.acquire("k:rpm", 1, 10, 60)).allowed:
            admitted.append(clock.now)
        clock.now += 0.5
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 60) <= 10
    assert len(admitted) == 50  # 10 per 60 s over 300 s: never more, never starved


async def test_entries_expire_after_the_window() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock=clock)
    assert (await limiter.acquire("b", 5, 5, 60)).allowed
    assert not (await limiter.acquire("b", 1, 5, 60)).allowed
    clock.now += 60
    assert (await limiter.acquire("b", 5, 5, 60)).allowed


async def test_weights_and_never_fitting_requests() -> None:
    limiter = InProcessRateLimiter(clock=Clock())
    assert (await limiter.acquire("t", 700, 1000, 60)).allowed
    assert not (await limiter.acquire("t", 400, 1000, 60)).allowed
    assert (await limiter.acquire("t", 300, 1000, 60)).allowed
    too_big = await limiter.acquire("t", 1001, 1000, 60)
    assert not too_big.allowed and math.isinf(too_big.retry_after_s)


async def test_adjust_corrects_a_worst_case_entry_to_the_real_weight() -> None:
    limiter = InProcessRateLimiter(clock=Clock())
    first = await limiter.acquire("t", 800, 1000, 60)
    assert not (await limiter.acquire("t", 500, 1000, 60)).allowed
    await limiter.adjust("t", first.ticket, 100)
    assert (await limiter.acquire("t", 500, 1000, 60)).allowed
    await limiter.adjust("t", "unknown-ticket", 0)
    await limiter.adjust("other-bucket", first.ticket, 0)


async def test_concurrent_acquires_never_pass_the_limit() -> None:
    limiter = InProcessRateLimiter()
    results = await asyncio.gather(*(limiter.acquire("c", 1, 25, 60) for _ in range(200)))
    assert sum(r.allowed for r in results) == 25
    assert all(r.retry_after_s > 0 for r in results if not r.allowed)


def test_retry_after_walks_the_oldest_entries() -> None:
    entries = [(0.0, 2), (10.0, 3), (20.0, 5)]
    assert retry_after(entries, 10, 1, 10, 60, now=30.0) == 30.0
    assert retry_after(entries, 10, 4, 10, 60, now=30.0) == 40.0
    assert retry_after(entries, 10, 6, 10, 60, now=30.0) == 50.0
    assert math.isinf(retry_after(entries, 10, 11, 10, 60, now=30.0))
