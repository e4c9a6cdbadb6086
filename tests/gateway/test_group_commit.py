"""``GroupCommitLedger``: concurrent calls share transactions, each call stays all-or-none."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from genai_factory.gateway.group_commit import GroupCommitLedger
from genai_factory.gateway.keys import utc_now
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.sql_store import SqlSpendLedger, open_engine


def entry(key_id: str, usd: float = 0.001, trace_id: str = "") -> SpendEntry:
    return SpendEntry(key_id, "m", usd, usd, 10, 5, utc_now(), trace_id=trace_id)


class SlowLedger:
    """Records every transaction; each one takes a little while, as a database write does."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.transactions: list[list[SpendEntry]] = []
        self.fail_with = fail_with

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        await asyncio.sleep(0.01)
        if self.fail_with is not None:
            raise self.fail_with
        self.transactions.append(list(entries))

    async def spent(self, key_id: str, since: datetime) -> float:
        return sum(e.actual_usd for t in self.transactions for e in t if e.key_id == key_id)

    async def entries(self, key_id: str | None = None, *, limit: int = 100) -> list[SpendEntry]:
        return [e for t in self.transactions for e in t][:limit]


async def test_concurrent_calls_share_transactions_and_return_once_written() -> None:
    inner = SlowLedger()
    ledger = GroupCommitLedger(inner)
    calls = [[entry(f"k{i}", trace_id=f"t{i}"), entry(f"k{i}")] for i in range(50)]
    await asyncio.gather(*(ledger.record(rows) for rows in calls))
    written = [e for t in inner.transactions for e in t]
    assert len(written) == 100 and {e.trace_id for e in written} >= {f"t{i}" for i in range(50)}
    # All 50 were handed over before the writer ran: one transaction instead of 50.
    assert len(inner.transactions) == ledger.commits == 1
    for transaction in inner.transactions:  # a call's rows are never split
        keys = [e.key_id for e in transaction]
        assert all(keys.count(k) == 2 for k in set(keys))


async def test_a_quiet_ledger_writes_each_call_at_once() -> None:
    inner = SlowLedger()
    ledger = GroupCommitLedger(inner)
    await ledger.record([entry("a")])
    assert len(inner.transactions) == 1
    await ledger.record([])  # nothing to write: no transaction
    assert len(inner.transactions) == 1
    assert await ledger.spent("a", utc_now()) == pytest.approx(0.001)


async def test_a_failed_transaction_fails_every_call_in_it() -> None:
    ledger = GroupCommitLedger(SlowLedger(fail_with=RuntimeError("disk full")))
    results = await asyncio.gather(
        *(ledger.record([entry("k")]) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert ledger.commits == 0


async def test_transactions_respect_max_rows() -> None:
    inner = SlowLedger()
    ledger = GroupCommitLedger(inner, max_rows=3)
    await asyncio.gather(*(ledger.record([entry("k"), entry("k")]) for _ in range(6)))
    assert all(len(t) <= 3 for t in inner.transactions)
    assert sum(len(t) for t in inner.transactions) == 12


async def test_a_cancelled_caller_does_not_lose_its_rows_or_block_the_others() -> None:
    inner = SlowLedger()
    ledger = GroupCommitLedger(inner)
    first = asyncio.create_task(ledger.record([entry("a")]))
    await asyncio.sleep(0)
    second = asyncio.create_task(ledger.record([entry("b")]))
    await asyncio.sleep(0)
    second.cancel()
    await first
    await ledger.flush()
    assert sorted(e.key_id for t in inner.transactions for e in t) == ["a", "b"]


async def test_on_sqlite_every_row_is_written(tmp_path: Path) -> None:
    engine = await asyncio.to_thread(open_engine, f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        ledger = GroupCommitLedger(SqlSpendLedger(engine))
        await asyncio.gather(*(ledger.record([entry("k", 0.5)]) for _ in range(40)))
        assert await ledger.spent("k", datetime(2000, 1, 1)) == pytest.approx(20.0)
        assert len(await ledger.entries("k", limit=100)) == 40
        assert ledger.commits < 40
    finally:
        engine.dispose()
