"""The cost monitor: one alert per key and budget period, counted, logged and POSTed to a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from genai_factory.gateway.keys import ApiKey, new_key
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine
from genai_factory.observability.cost_monitor import CostMonitor
from genai_factory.observability.metrics import Metrics

from .test_metrics import value
from .webhook import webhook_receiver

NOW = datetime(2026, 5, 14, 12, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Backends:
    def __init__(self, keys: SqlKeyStore, ledger: SqlSpendLedger) -> None:
        self.keys = keys
        self.ledger = ledger

    async def key(self, budget_usd: float | None = 1.0) -> ApiKey:
        record, _ = new_key("k", budget_usd=budget_usd, budget_period="day")
        await self.keys.add(record)
        return record

    async def spend(self, key: ApiKey, usd: float, at: datetime = NOW) -> list[SpendEntry]:
        entry = SpendEntry(key.id, "m", usd, usd, 10, 10, at)
        await self.ledger.record([entry])
        return [entry]


@pytest.fixture
async def backends(tmp_path: Path) -> AsyncIterator[Backends]:
    engine = await asyncio.to_thread(open_engine, f"sqlite:///{tmp_path / 'g.db'}")
    yield Backends(SqlKeyStore(engine), SqlSpendLedger(engine))
    engine.dispose()


def monitor(backends: Backends, clock: Clock, **options: object) -> CostMonitor:
    return CostMonitor(keys=backends.keys, ledger=backends.ledger, now=clock, **options)  # type: ignore[arg-type]


async def test_alerts_once_per_period_when_the_share_is_passed(backends: Backends) -> None:
    clock, metrics = Clock(), Metrics()
    watcher = monitor(backends, clock, share=0.8, metrics=metrics)
    key = await backends.key(budget_usd=1.0)
    await backends.spend(key, 0.5)
    assert await watcher.check(key.id) is None
    await backends.spend(key, 0.31)
    alert = await watcher.check(key.id)
    assert alert is not None
    assert alert.spent_usd == pytest.approx(0.81) and alert.spent_share == pytest.approx(0.81)
    assert alert.period_start == datetime(2026, 5, 14) and alert.budget_period == "day"
    await backends.spend(key, 0.1)
    assert await watcher.check(key.id) is None  # already reported this period
    assert value(metrics, "genai_budget_alerts_total", key_id=key.id) == 1
    clock.now = NOW + timedelta(days=1)
    await backends.spend(key, 0.9, at=clock.now)
    assert await watcher.check(key.id) is not None  # a new period
    await watcher.aclose()


async def test_keys_without_a_budget_are_never_reported(backends: Backends) -> None:
    watcher = monitor(backends, Clock())
    key = await backends.key(budget_usd=None)
    await backends.spend(key, 100.0)
    assert await watcher.check(key.id) is None
    assert await watcher.check("000000000000") is None


async def test_recorded_spend_is_checked_in_the_background_and_posted(
    backends: Backends,
) -> None:
    metrics = Metrics()
    with webhook_receiver() as hook:
        watcher = monitor(
            backends,
            Clock(),
            share=0.5,
            metrics=metrics,
            webhook_url=hook.url,
            http=httpx.AsyncClient(timeout=5),
        )
        key = await backends.key(budget_usd=2.0)
        entries = await backends.spend(key, 1.2)
        watcher.spend_recorded(entries)
        watcher.spend_recorded(entries)  # overlapping: coalesced, still one alert
        watcher.spend_recorded([replace(entries[0], actual_usd=0.0)])
        await watcher.drain()
        bodies = hook.wait_for(1)
        await watcher.aclose()
    assert len(bodies) == 1
    body = bodies[0]
    assert body["event"] == "budget_threshold_passed"
    assert body["key_id"] == key.id and body["alert_share"] == 0.5
    assert body["spent_usd"] == pytest.approx(1.2) and body["budget_usd"] == 2.0
    assert body["period_end"] == "2026-05-15T00:00:00Z"
    assert value(metrics, "genai_budget_webhook_failures_total") == 0


async def test_a_failing_webhook_is_counted(backends: Backends) -> None:
    metrics = Metrics()
    with webhook_receiver(status=500) as hook:
        watcher = monitor(
            backends,
            Clock(),
            share=0.5,
            metrics=metrics,
            webhook_url=hook.url,
            http=httpx.AsyncClient(timeout=5),
        )
        key = await backends.key(budget_usd=1.0)
        await backends.spend(key, 0.7)
        assert await watcher.check(key.id) is not None
        await watcher.aclose()
    assert value(metrics, "genai_budget_webhook_failures_total") == 1
    assert value(metrics, "genai_budget_alerts_total", key_id=key.id) == 1


async def test_steady_spend_is_checked_at_most_once_per_interval(backends: Backends) -> None:
    watcher = monitor(backends, Clock(), share=0.5, min_interval_s=0.2)
    key = await backends.key(budget_usd=100.0)
    entries = await backends.spend(key, 1.0)
    checks = 0
    real_check = watcher.check

    async def counted(key_id: str) -> object:
        nonlocal checks
        checks += 1
        return await real_check(key_id)

    watcher.check = counted  # type: ignore[method-assign]
    started = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - started < 0.5:  # a request every 5 ms
        watcher.spend_recorded(entries)
        await asyncio.sleep(0.005)
    await watcher.drain()
    await watcher.aclose()
    assert 2 <= checks <= 5  # ~100 recordings, one check per 0.2 s (plus the trailing one)
