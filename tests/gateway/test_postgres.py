"""The key store and spend ledger on a real PostgreSQL (127.0.0.1:5432, a schema per test)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from genai_factory.gateway.keys import new_key, utc_now
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine

pytestmark = pytest.mark.integration


async def test_keys_and_ledger_on_postgres(postgres_url: str) -> None:
    engine = await asyncio.to_thread(open_engine, postgres_url)
    try:
        await asyncio.to_thread(open_engine, postgres_url)  # opening twice finds the tables
        keys, ledger = SqlKeyStore(engine), SqlSpendLedger(engine)
        record, plaintext = new_key("pg", rpm=10, budget_usd=3.0, budget_period="day")
        await keys.add(record)
        assert await keys.get(record.id) == record
        assert await keys.count_active() == 1
        assert await keys.revoke(record.id)
        assert await keys.count_active() == 0

        now = utc_now()
        rows = [
            SpendEntry(record.id, "m", 0.5, 0.25, 10, 5, now, "ok", "trace-1"),
            SpendEntry(record.id, "m", 0.5, 0.0, 0, 0, now, "error", "trace-2"),
            SpendEntry(record.id, "m", 0.5, 0.5, 10, 5, now - timedelta(days=40), "ok", "old"),
        ]
        await ledger.record(rows)
        assert await ledger.spent(record.id, now - timedelta(days=1)) == pytest.approx(0.25)
        assert await ledger.spent("other", now - timedelta(days=1)) == 0
        latest = await ledger.entries(record.id, limit=2)
        assert [r.trace_id for r in latest] == ["old", "trace-2"]
        assert latest[1] == rows[1]
        assert plaintext not in repr(await keys.list_keys(include_revoked=True))
    finally:
        engine.dispose()
