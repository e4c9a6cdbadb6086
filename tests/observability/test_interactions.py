"""Interaction records: built from answers and failures, stored in SQL, written in batches with a
receipt per record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from genai_factory.assistant.answer import AssistantAnswer
from genai_factory.exceptions import ProviderUnavailable, SafetyViolation, ServiceNotReady
from genai_factory.messages import Citation, Usage
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interaction_writer import InteractionWriter
from genai_factory.observability.interactions import (
    MAX_TEXT_CHARS,
    FeedbackRecord,
    InteractionRecord,
    TextPolicy,
    record_answer,
    record_failure,
)
from genai_factory.observability.interactions import erased as erased_record
from genai_factory.observability.metrics import Metrics

from .test_metrics import value


class SafeAnswer(AssistantAnswer):
    """An answer with plain safety verdicts (the record keeps whatever the answer's are)."""

    safety: dict[str, Any] | None = None  # type: ignore[assignment]


def answer(**overrides: Any) -> AssistantAnswer:
    values: dict[str, Any] = {
        "answer": "Use llm.fallbacks [1].",
        "citations": [
            Citation(
                index=1,
                document_id="d1",
                chunk_id="d1:4",
                title="Models",
                source="models.md",
                excerpt="...",
                score=0.7,
                cited=True,
            )
        ],
        "usage": Usage(prompt_tokens=40, completion_tokens=6, cost_usd=0.002),
        "latency_ms": 12.5,
        "model": "m1",
        "trace_id": "a" * 32,
        "route": "rag",
        "session_id": "s1",
        "stages_ms": {"retrieval": 2.0, "llm": 10.0},
    }
    values.update(overrides)
    return SafeAnswer(**values)


def test_a_record_holds_the_answer_its_cost_and_its_sources() -> None:
    given = answer(safety={"input": "pass"}, stop_reason="max_steps")
    record = record_answer(
        given, endpoint="generate", request_text="how?", policy=TextPolicy(), key_id="k1"
    )
    assert record.trace_id == "a" * 32 and record.key_id == "k1" and record.status == "ok"
    assert (record.request_text, record.response_text) == ("how?", "Use llm.fallbacks [1].")
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (40, 6, 0.002)
    assert record.retrieval_ids == ["d1:4"]
    assert record.stages_ms == {"retrieval": 2.0, "llm": 10.0}
    assert record.safety == {"input": "pass"}
    # Fields the answer gained later (the agent's) are kept in details.
    assert record.details["stop_reason"] == "max_steps"
    assert "answer" not in record.details and "safety" not in record.details


def test_texts_are_redacted_cut_or_left_out() -> None:
    redacting = TextPolicy(redact=lambda text: text.replace("fallbacks", "[REDACTED]"))
    record = record_answer(answer(), endpoint="g", request_text="my fallbacks", policy=redacting)
    assert record.request_text == "my [REDACTED]"
    assert record.response_text == "Use llm.[REDACTED] [1]."
    long = record_answer(
        answer(answer="x" * (MAX_TEXT_CHARS + 5)),
        endpoint="g",
        request_text="q",
        policy=TextPolicy(),
    )
    assert len(long.response_text) == MAX_TEXT_CHARS
    silent = record_answer(answer(), endpoint="g", request_text="q", policy=TextPolicy(False))
    assert silent.request_text == silent.response_text == ""


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (SafetyViolation("no", reason="prompt_injection"), "blocked", "safety_violation"),
        (ProviderUnavailable("down"), "error", "provider_unavailable"),
        (RuntimeError("bug"), "error", "internal_error"),
        (asyncio.CancelledError(), "cancelled", "cancelled"),
    ],
)
def test_failures_are_recorded_with_their_code(
    error: BaseException, status: str, code: str
) -> None:
    record = record_failure(
        error, trace_id="t", endpoint="g", request_text="q", policy=TextPolicy(), latency_ms=3.0
    )
    assert (record.status, record.error_code) == (status, code)
    if status == "blocked":
        assert record.safety == {"blocked": True, "reason": "prompt_injection"}


@pytest.fixture
async def sql_log(tmp_path: Path) -> AsyncIterator[SqlInteractionLog]:
    engine = await asyncio.to_thread(open_interaction_engine, f"sqlite:///{tmp_path / 'i.db'}")
    log = SqlInteractionLog(engine)
    yield log
    await log.aclose()


async def test_sql_log_round_trip(sql_log: SqlInteractionLog) -> None:
    record = record_answer(
        answer(safety={"ok": True}), endpoint="generate", request_text="q", policy=TextPolicy()
    )
    await sql_log.record([record])
    found = await sql_log.get(record.trace_id)
    assert found is not None
    assert found.as_row() == record.as_row()
    assert await sql_log.get("b" * 32) is None
    assert [r.trace_id for r in await sql_log.recent(since=record.created_at)] == [record.trace_id]
    first = await sql_log.add_feedback(FeedbackRecord(record.trace_id, 1, "good", "k1"))
    second = await sql_log.add_feedback(FeedbackRecord(record.trace_id, -1))
    assert second > first
    ratings = [(f.rating, f.comment, f.key_id) for f in await sql_log.feedback(record.trace_id)]
    assert ratings == [(1, "good", "k1"), (-1, None, None)]


def _record(trace_id: str) -> InteractionRecord:
    return InteractionRecord(trace_id=trace_id, endpoint="g", status="ok", request_text="q")


class FlakyLog:
    """Fails its first ``failures`` writes; can hold writes until released."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.written: list[InteractionRecord] = []
        self.events: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def record(self, records: list[InteractionRecord]) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.written.extend(records)
        self.events.extend(f"write {r.trace_id}" for r in records)

    async def erase_session(self, session_id: str) -> int:
        self.events.append(f"erase {session_id}")
        erased = [r for r in self.written if r.session_id == session_id]
        self.written = [erased_record(r) if r.session_id == session_id else r for r in self.written]
        return len(erased)

    async def get(self, trace_id: str) -> InteractionRecord | None:
        return next((r for r in self.written if r.trace_id == trace_id), None)

    async def add_feedback(self, feedback: FeedbackRecord) -> int:
        return 1

    async def aclose(self) -> None:
        return None


async def test_writer_writes_in_the_background_and_finds_queued_records() -> None:
    log, metrics = FlakyLog(), Metrics()
    log.gate.clear()
    writer = InteractionWriter(log, metrics=metrics)
    writer.start()
    writer.submit(_record("t1"))
    writer.submit(_record("t2"))
    await asyncio.sleep(0)
    assert log.written == []
    assert (await writer.find("t2")) is not None  # queued, not written yet
    log.gate.set()
    await writer.flush()
    assert [r.trace_id for r in log.written] == ["t1", "t2"]
    assert value(metrics, "genai_interaction_log_records_total", outcome="written") == 2
    assert await writer.find("t1") is not None and await writer.find("nope") is None
    await writer.aclose()


async def test_writer_retries_then_spills_and_counts_what_it_could_not_write(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    spill = tmp_path / "spill.jsonl"
    retried = InteractionWriter(FlakyLog(failures=2), metrics=metrics, backoff_s=0.001)
    retried.start()
    retried.submit(_record("t1"))
    await retried.flush()
    assert value(metrics, "genai_interaction_log_records_total", outcome="written") == 1
    await retried.aclose()

    failing = InteractionWriter(
        FlakyLog(failures=99), metrics=metrics, spill_path=spill, attempts=2, backoff_s=0.001
    )
    failing.start()
    failing.submit(_record("t2"))
    failing.submit(_record("t3"))
    await failing.flush()
    assert value(metrics, "genai_interaction_log_records_total", outcome="failed") == 2
    lines = [json.loads(line) for line in spill.read_text().splitlines()]
    assert [line["trace_id"] for line in lines] == ["t2", "t3"]
    await failing.aclose()


async def test_a_receipt_resolves_once_the_batch_holding_its_record_is_committed() -> None:
    log = FlakyLog()
    log.gate.clear()
    writer = InteractionWriter(log)
    writer.start()
    first = writer.submit(_record("t1"))
    await asyncio.sleep(0)  # the writer takes t1 and holds its commit
    second, third = writer.submit(_record("t2")), writer.submit(_record("t3"))
    waiting = asyncio.create_task(writer.wait(second))
    await asyncio.sleep(0.01)
    assert not first.done() and not waiting.done()
    log.gate.set()
    assert await writer.wait(first) == "written"
    assert await waiting == "written" and third.result() == "written"
    assert log.written and [r.trace_id for r in log.written] == ["t1", "t2", "t3"]
    await writer.aclose()


async def test_a_receipt_reports_a_spilled_or_lost_record(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    spilled = InteractionWriter(
        FlakyLog(failures=99), spill_path=spill, attempts=1, backoff_s=0.001
    )
    spilled.start()
    assert await spilled.wait(spilled.submit(_record("t1"))) == "spilled"
    assert json.loads(spill.read_text())["trace_id"] == "t1"
    await spilled.aclose()

    lost = InteractionWriter(FlakyLog(failures=99), attempts=1, backoff_s=0.001)
    lost.start()
    assert await lost.wait(lost.submit(_record("t2"))) == "failed"
    await lost.aclose()


async def test_waiting_needs_the_writer_and_closing_settles_what_is_queued() -> None:
    log = FlakyLog()
    writer = InteractionWriter(log, max_queue=1)
    receipt = writer.submit(_record("t1"))
    assert await writer.wait(receipt) is None  # not started: nobody would write it
    assert await writer.wait(writer.submit(_record("t2"))) == "dropped"
    log.gate.clear()
    writer.start()
    await asyncio.sleep(0)
    queued = writer.submit(_record("t3"))
    await writer.aclose(timeout_s=0.05)  # the write of t1 never ends: t3 is never written
    assert receipt.result() == "failed" and queued.result() == "failed"


async def test_a_cancelled_waiter_does_not_cancel_the_write() -> None:
    log = FlakyLog()
    log.gate.clear()
    writer = InteractionWriter(log)
    writer.start()
    receipt = writer.submit(_record("t1"))
    waiting = asyncio.create_task(writer.wait(receipt))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    log.gate.set()
    await writer.flush()
    assert receipt.result() == "written" and [r.trace_id for r in log.written] == ["t1"]
    await writer.aclose()


async def test_an_unexpected_error_settles_its_receipts_and_the_writer_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = InteractionWriter(FlakyLog())
    write, calls = writer._write, []

    async def broken_once(submitted: Any) -> None:
        calls.append(submitted)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        await write(submitted)

    monkeypatch.setattr(writer, "_write", broken_once)
    writer.start()
    assert await writer.wait(writer.submit(_record("t1"))) == "failed"
    assert await writer.wait(writer.submit(_record("t2"))) == "written"
    await writer.aclose()


async def test_a_full_queue_drops_and_counts() -> None:
    metrics = Metrics()
    log = FlakyLog()
    log.gate.clear()
    writer = InteractionWriter(log, metrics=metrics, max_queue=1)
    writer.submit(_record("t1"))
    writer.submit(_record("t2"))
    assert value(metrics, "genai_interaction_log_records_total", outcome="dropped") == 1
    log.gate.set()
    writer.start()
    await writer.aclose()
    assert [r.trace_id for r in log.written] == ["t1"]


STEP = {
    "index": 0,
    "tool": "sql_query",
    "input": {"sql": "SELECT card FROM customers WHERE name = 'Ada'"},
    "thought": "look up Ada",
    "observation": "4111 1111 1111 1111",
    "ok": True,
    "automatic": False,
    "model_ms": 1.5,
    "tool_ms": 2.5,
}


def session_record(trace_id: str, session_id: str | None) -> InteractionRecord:
    return InteractionRecord(
        trace_id=trace_id,
        endpoint="generate",
        status="ok",
        request_text=f"my card number, question {trace_id}",
        response_text="It is 4111 1111 1111 1111.",
        key_id="k1",
        session_id=session_id,
        route="agent",
        model="m1",
        prompt_tokens=40,
        completion_tokens=5,
        cost_usd=0.002,
        latency_ms=12.5,
        stages_ms={"agent": 10.0},
        retrieval_ids=["doc#1"],
        safety={"input": [], "output": []},
        details={"steps": [STEP], "retrieval_scores": [0.5], "limit_hit": False, "x": "text"},
    )


def assert_erased(found: InteractionRecord | None, original: InteractionRecord) -> None:
    assert found is not None and found.deleted_at is not None
    assert (found.request_text, found.response_text) == ("", "")
    kept_step = {k: v for k, v in STEP.items() if k not in ("input", "thought", "observation")}
    assert found.details == {"retrieval_scores": [0.5], "limit_hit": False, "steps": [kept_step]}
    # What accounting and the operations page count stays.
    unchanged = ("trace_id", "key_id", "session_id", "status", "route", "model", "prompt_tokens")
    unchanged += ("completion_tokens", "cost_usd", "latency_ms", "stages_ms", "safety")
    assert all(getattr(found, name) == getattr(original, name) for name in unchanged)


def test_an_erased_record_keeps_no_text() -> None:
    original = session_record("t1", "s1")
    assert_erased(erased_record(original), original)
    truncated = replace(original, details={"truncated": True, "preview": "secret"})
    assert erased_record(truncated).details == {}


async def test_erasing_a_session_blanks_its_texts_and_keeps_its_accounting(
    sql_log: SqlInteractionLog,
) -> None:
    mine = [session_record("t1", "s1"), session_record("t2", "s1")]
    others = [session_record("t3", "s2"), session_record("t4", None)]
    await sql_log.record([*mine, *others])
    await sql_log.add_feedback(FeedbackRecord("t1", -1, "it showed my card", "k1"))
    await sql_log.add_feedback(FeedbackRecord("t3", 1, "thanks", "k1"))
    assert await sql_log.erase_session("s1") == 2
    for record in mine:
        assert_erased(await sql_log.get(record.trace_id), record)
    for record in others:
        found = await sql_log.get(record.trace_id)
        assert found is not None and found.as_row() == record.as_row()
    assert [(f.rating, f.comment) for f in await sql_log.feedback("t1")] == [(-1, None)]
    assert [(f.rating, f.comment) for f in await sql_log.feedback("t3")] == [(1, "thanks")]
    first = await sql_log.get("t1")
    assert await sql_log.erase_session("s1") == 0  # already erased: left as it was
    assert await sql_log.get("t1") == first
    assert await sql_log.erase_session("nope") == 0


async def test_a_table_of_an_older_release_gets_the_deleted_at_column(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from genai_factory.observability.interaction_store import interactions_table

    url = f"sqlite:///{tmp_path / 'old.db'}"
    older = sa.MetaData()
    columns = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in interactions_table.columns
        if c.name != "deleted_at"
    ]
    old_table = sa.Table("interactions", older, *columns)
    engine = sa.create_engine(url)
    older.create_all(engine)
    row = session_record("t1", "s1").as_row()
    del row["deleted_at"]
    with engine.begin() as conn:
        conn.execute(old_table.insert(), [row])
    engine.dispose()
    log = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, url))
    found = await log.get("t1")
    assert found is not None and found.deleted_at is None
    assert await log.erase_session("s1") == 1
    indexes = {i["name"] for i in sa.inspect(log.engine).get_indexes("interactions")}
    assert "ix_interactions_session" in indexes
    await log.aclose()
    again = SqlInteractionLog(await asyncio.to_thread(open_interaction_engine, url))
    assert_erased(await again.get("t1"), session_record("t1", "s1"))
    await again.aclose()


async def test_an_erasure_runs_after_the_records_queued_before_it() -> None:
    log = FlakyLog()
    log.gate.clear()
    writer = InteractionWriter(log)
    writer.start()
    writer.submit(session_record("t1", "s1"))
    writer.submit(session_record("t2", "s2"))
    erasing = asyncio.create_task(writer.erase_session("s1"))
    await asyncio.sleep(0)
    writer.submit(session_record("t3", "s1"))  # a turn that ended after the delete
    log.gate.set()
    assert await erasing == 1
    await writer.flush()
    assert log.events == ["write t1", "write t2", "erase s1", "write t3"]
    assert [r.request_text == "" for r in log.written] == [True, False, False]
    await writer.aclose()


async def test_an_erasure_without_the_background_writer_goes_straight_to_the_log() -> None:
    log = FlakyLog()
    log.written = [session_record("t1", "s1")]
    assert await InteractionWriter(log).erase_session("s1") == 1
    assert log.written[0].request_text == ""


async def test_an_erasure_also_erases_the_spill_file(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    log = FlakyLog(failures=99)
    writer = InteractionWriter(log, spill_path=spill, attempts=1, backoff_s=0.001)
    writer.start()
    writer.submit(session_record("t1", "s1"))
    writer.submit(session_record("t2", "s2"))
    await writer.flush()
    with spill.open("a", encoding="utf-8") as handle:
        handle.write("not json\n")
    log.failures = 0
    await writer.erase_session("s1")
    lines = spill.read_text().splitlines()
    rows = [json.loads(line) for line in lines[:2]]
    assert [r["trace_id"] for r in rows] == ["t1", "t2"]
    assert rows[0]["request_text"] == "" and rows[0]["response_text"] == ""
    assert rows[0]["deleted_at"] and rows[0]["prompt_tokens"] == 40
    assert "4111" not in lines[0]
    assert rows[1]["request_text"].startswith("my card") and rows[1]["deleted_at"] is None
    assert lines[2] == "not json"
    await writer.aclose()


async def test_an_erasure_that_keeps_failing_is_refused_as_unavailable() -> None:
    class Broken(FlakyLog):
        async def erase_session(self, session_id: str) -> int:
            raise OSError("database gone")

    writer = InteractionWriter(Broken(), attempts=2, backoff_s=0.001)
    writer.start()
    with pytest.raises(ServiceNotReady):
        await writer.erase_session("s1")
    await writer.aclose()
