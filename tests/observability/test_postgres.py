"""The interaction log on a real PostgreSQL (127.0.0.1:5432, a fresh schema per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interaction_writer import InteractionWriter
from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord

from .test_interactions import assert_erased, session_record

pytestmark = pytest.mark.integration

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    import psycopg

    schema = f"obs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def log(postgres_url: str) -> AsyncIterator[SqlInteractionLog]:
    opened = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, postgres_url))
    yield opened
    await opened.aclose()


async def test_records_and_feedback_round_trip(log: SqlInteractionLog) -> None:
    record = InteractionRecord(
        trace_id=uuid.uuid4().hex,
        endpoint="generate",
        status="ok",
        request_text="what is a breaker?",
        response_text="It fails fast.",
        key_id="3f9a0c1b2d4e",
        route="rag",
        model="m1",
        prompt_tokens=40,
        completion_tokens=5,
        cost_usd=0.001,
        latency_ms=12.5,
        stages_ms={"retrieval": 2.0, "llm": 10.0},
        retrieval_ids=["d1:4", "d2:0"],
        safety={"input": [{"guard": "injection", "action": "allow"}]},
        details={"steps": []},
    )
    await log.record([record, InteractionRecord("t2", "generate", "error", "q")])
    found = await log.get(record.trace_id)
    assert found is not None and found.as_row() == record.as_row()
    assert len(await log.recent(since=record.created_at)) == 2
    await log.add_feedback(FeedbackRecord(record.trace_id, -1, "wrong", "3f9a0c1b2d4e"))
    (feedback,) = await log.feedback(record.trace_id)
    assert (feedback.rating, feedback.comment) == (-1, "wrong")


async def test_a_nul_byte_fails_no_batch(log: SqlInteractionLog, tmp_path: Path) -> None:
    """NUL characters are stored as U+FFFD, so a batch with one such request is written whole."""
    writer = InteractionWriter(log, spill_path=tmp_path / "spill.jsonl")
    writer.start()
    ids = [uuid.uuid4().hex for _ in range(20)]
    for number, trace_id in enumerate(ids):
        text = "bad \x00 query" if number == 7 else f"query {number}"
        writer.submit(
            InteractionRecord(
                trace_id=trace_id,
                endpoint="generate",
                status="ok",
                request_text=text,
                safety={"input": [{"reason": text}]},
            )
        )
    await writer.aclose()
    stored = [await log.get(trace_id) for trace_id in ids]
    assert all(record is not None for record in stored)
    assert stored[7] is not None and stored[7].request_text == "bad \ufffd query"
    assert not (tmp_path / "spill.jsonl").exists()


async def test_erasing_a_session_on_postgresql(log: SqlInteractionLog) -> None:
    mine, other = session_record("t1", "s1"), session_record("t2", "s2")
    await log.record([mine, other])
    await log.add_feedback(FeedbackRecord("t1", -1, "it showed my card", "k1"))
    assert await log.erase_session("s1") == 1
    assert_erased(await log.get("t1"), mine)
    found = await log.get("t2")
    assert found is not None and found.as_row() == other.as_row()
    assert [(f.rating, f.comment) for f in await log.feedback("t1")] == [(-1, None)]
    assert await log.erase_session("s1") == 0


async def test_an_older_postgresql_table_is_upgraded(postgres_url: str) -> None:
    import sqlalchemy as sa

    # A table made by an older release: no deleted_at column, no session index.
    engine = await asyncio.to_thread(open_interaction_engine, postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE interactions DROP COLUMN deleted_at"))
        conn.execute(sa.text("DROP INDEX ix_interactions_session"))
    engine.dispose()
    upgraded = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, postgres_url))
    await upgraded.record([session_record("t1", "s1")])
    assert await upgraded.erase_session("s1") == 1
    assert_erased(await upgraded.get("t1"), session_record("t1", "s1"))
    await upgraded.aclose()
