"""Interaction records: built from answers and failures, stored in SQL, written off the request path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from genai_factory.assistant.answer import AssistantAnswer
from genai_factory.exceptions import ProviderUnavailable, SafetyViolation
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
        self.gate = asyncio.Event()
        self.gate.set()

    async def record(self, records: list[InteractionRecord]) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.written.extend(records)

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
