"""``InteractionWriter``: write interaction records after the response, off the request path.

Routes :meth:`~InteractionWriter.submit` a record once the answer exists; it goes into a bounded
queue and one background task writes the queue in batches (in a worker thread, through the log).
Nothing is lost silently: a batch that still fails after a few retries is logged
(``interaction_log_write_failed``), counted (``genai_interaction_log_records_total{outcome="failed"}``)
and appended to a JSON-lines spill file to replay later; a full queue is logged and counted
(``dropped``). Records still queued can be found by trace id (feedback may come before the write),
and :meth:`~InteractionWriter.aclose` writes what is left before the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Protocol

import structlog

from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord
from genai_factory.observability.metrics import Metrics

log = structlog.get_logger(__name__)


class InteractionLog(Protocol):
    """Where records and feedback are stored (:class:`SqlInteractionLog`)."""

    async def record(self, records: list[InteractionRecord]) -> None: ...

    async def get(self, trace_id: str) -> InteractionRecord | None: ...

    async def add_feedback(self, feedback: FeedbackRecord) -> int: ...

    async def aclose(self) -> None: ...


class InteractionWriter:
    """The queue and the background writer in front of an :class:`InteractionLog`.

    Args:
        log: where records go.
        metrics: counts written, failed and dropped records.
        spill_path: a JSON-lines file for records that could not be written (``None``: none).
        max_queue: records waiting at most; past it new records are dropped (logged, counted).
        batch_size: records per write.
        attempts: writes tried per batch before it is spilled.
        backoff_s: the first pause between attempts (doubling).
    """

    def __init__(
        self,
        log: InteractionLog,
        *,
        metrics: Metrics | None = None,
        spill_path: Path | None = None,
        max_queue: int = 10_000,
        batch_size: int = 100,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.spill_path = spill_path
        self.batch_size = batch_size
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._queue: asyncio.Queue[InteractionRecord] = asyncio.Queue(maxsize=max_queue)
        self._pending: dict[str, InteractionRecord] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background writer (on the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="interaction-log-writer")

    def submit(self, record: InteractionRecord) -> None:
        """Queue ``record`` for writing; never blocks, never raises."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            log.error("interaction_log_queue_full", trace_id=record.trace_id)
            self._count("dropped")
            return
        self._pending[record.trace_id] = record
        self._gauge()

    async def find(self, trace_id: str) -> InteractionRecord | None:
        """The record of ``trace_id``, queued or written."""
        pending = self._pending.get(trace_id)
        return pending if pending is not None else await self.log.get(trace_id)

    async def add_feedback(self, feedback: FeedbackRecord) -> int:
        """Store a rating now (the caller waits for it to be durable)."""
        return await self.log.add_feedback(feedback)

    async def flush(self) -> None:
        """Wait until every queued record is written (or spilled)."""
        await self._queue.join()

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (at most ``timeout_s``), stop the writer, close the log."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self.flush(), timeout_s)
            except TimeoutError:
                log.error("interaction_log_unflushed", records=self._queue.qsize())
                self._count("failed", self._queue.qsize())
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.log.aclose()

    # -- the background writer ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for record in batch:
                    self._pending.pop(record.trace_id, None)
                    self._queue.task_done()
                self._gauge()

    async def _write(self, batch: list[InteractionRecord]) -> None:
        error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                await self.log.record(batch)
            except Exception as exc:
                error = exc
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(self.backoff_s * 2**attempt)
                continue
            self._count("written", len(batch))
            return
        if len(batch) > 1:  # one bad record must not take the others down with it
            for record in batch:
                await self._write([record])
            return
        log.error(
            "interaction_log_write_failed",
            error=f"{type(error).__name__}: {error}",
            records=len(batch),
            trace_ids=[r.trace_id for r in batch[:20]],
            spill_path=str(self.spill_path) if self.spill_path else None,
        )
        self._count("failed", len(batch))
        await self._spill(batch)

    async def _spill(self, batch: list[InteractionRecord]) -> None:
        path = self.spill_path
        if path is None:
            return
        lines = "".join(json.dumps(r.as_row(), default=str) + "\n" for r in batch)

        def append() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(lines)

        try:
            await asyncio.to_thread(append)
        except OSError as exc:
            log.error("interaction_log_spill_failed", error=str(exc), records=len(batch))

    def _count(self, outcome: str, count: int = 1) -> None:
        if self.metrics is not None and count:
            self.metrics.interactions(outcome, count)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.interaction_queue.set(self._queue.qsize())
