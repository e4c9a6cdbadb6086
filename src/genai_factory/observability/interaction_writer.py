"""``InteractionWriter``: write interaction records in batches, one commit for many requests.

Routes :meth:`~InteractionWriter.submit` a record once the outcome of a request is known; it goes
into a bounded queue and one background task writes the queue in batches (in a worker thread,
through the log): the records that arrive while a batch is written go into the next one (group
commit). ``submit`` returns a receipt, a future that resolves once the record is stored (or, failing
that, spilled): a durable service (``observability.interaction_log_durable``, the default) sends a
response only after its record's receipt resolves (:meth:`~InteractionWriter.wait`), so a
process killed at any instant loses no record of an answered request.

Nothing is lost silently: a batch that still fails after a few retries is logged
(``interaction_log_write_failed``), counted (``genai_interaction_log_records_total{outcome="failed"}``)
and appended to a JSON-lines spill file to replay later; a full queue is logged and counted
(``dropped``). Records still queued can be found by trace id (feedback may come before the write),
and :meth:`~InteractionWriter.aclose` writes what is left before the process stops.

:meth:`~InteractionWriter.erase_session` (a session was deleted) goes through the same queue, so it
runs after every record queued before it is written: none of them escapes the erasure. It also
erases the session's records in the spill file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from genai_factory.exceptions import ServiceNotReady
from genai_factory.observability.interactions import (
    FeedbackRecord,
    InteractionRecord,
    erased_details,
    utc_now,
)
from genai_factory.observability.metrics import Metrics

log = structlog.get_logger(__name__)

#: What became of a submitted record: stored in the log, appended to the spill file, dropped (the
#: queue was full), or lost (neither the log nor the spill file took it; logged and counted).
Outcome = Literal["written", "spilled", "dropped", "failed"]
Receipt = asyncio.Future[Outcome]


class InteractionLog(Protocol):
    """Where records and feedback are stored (:class:`SqlInteractionLog`)."""

    async def record(self, records: list[InteractionRecord]) -> None: ...

    async def get(self, trace_id: str) -> InteractionRecord | None: ...

    async def add_feedback(self, feedback: FeedbackRecord) -> int: ...

    async def erase_session(self, session_id: str) -> int: ...

    async def aclose(self) -> None: ...


@dataclass
class _Submitted:
    """A queued record and its receipt."""

    record: InteractionRecord
    done: Receipt


@dataclass
class _Erasure:
    """A queued :meth:`InteractionWriter.erase_session`: its session and who waits for it."""

    session_id: str
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


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
        self._queue: asyncio.Queue[_Submitted | _Erasure] = asyncio.Queue(maxsize=max_queue)
        self._pending: dict[str, InteractionRecord] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background writer (on the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="interaction-log-writer")

    @property
    def running(self) -> bool:
        """Whether the background writer runs (receipts resolve only while it does)."""
        return self._task is not None and not self._task.done()

    def submit(self, record: InteractionRecord) -> Receipt:
        """Queue ``record`` for writing; never blocks, never raises. Returns its receipt, resolved
        with the record's :data:`Outcome` once it is written, spilled or given up."""
        done: Receipt = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Submitted(record, done))
        except asyncio.QueueFull:
            log.error("interaction_log_queue_full", trace_id=record.trace_id)
            self._count("dropped")
            done.set_result("dropped")
            return done
        self._pending[record.trace_id] = record
        self._gauge()
        return done

    async def wait(self, receipt: Receipt) -> Outcome | None:
        """Wait until the record of ``receipt`` is written (or spilled, or given up) and return
        what became of it; ``None`` at once when the background writer does not run. Cancelling
        the caller does not cancel the write."""
        if receipt.done():
            return receipt.result()
        if not self.running:
            return None
        return await asyncio.shield(receipt)

    async def find(self, trace_id: str) -> InteractionRecord | None:
        """The record of ``trace_id``, queued or written."""
        pending = self._pending.get(trace_id)
        return pending if pending is not None else await self.log.get(trace_id)

    async def add_feedback(self, feedback: FeedbackRecord) -> int:
        """Store a rating now (the caller waits for it to be durable)."""
        return await self.log.add_feedback(feedback)

    async def erase_session(self, session_id: str) -> int:
        """Erase the session's records (:meth:`SqlInteractionLog.erase_session`), those still
        queued included, and its records in the spill file; returns how many the log erased.

        Raises:
            ServiceNotReady: the interaction log is unavailable.
        """
        if self._task is None:
            return await self._erase(session_id)
        job = _Erasure(session_id)
        await self._queue.put(job)
        return await asyncio.shield(job.done)

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
            self._settle_queued()
        await self.log.aclose()

    def _settle_queued(self) -> None:
        """Settle what is still queued once the writer stopped: nobody may wait forever."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item.done.done():
                continue
            if isinstance(item, _Erasure):
                item.done.set_exception(ServiceNotReady("the interaction log is closing"))
            else:
                self._pending.pop(item.record.trace_id, None)
                item.done.set_result("failed")

    # -- the background writer ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            # A batch of records, ended early by an erasure, which runs after them.
            while (
                isinstance(items[-1], _Submitted)
                and len(items) < self.batch_size
                and not self._queue.empty()
            ):
                items.append(self._queue.get_nowait())
            submitted = [item for item in items if isinstance(item, _Submitted)]
            try:
                if submitted:
                    await self._write(submitted)
                if isinstance(items[-1], _Erasure):
                    await self._run_erasure(items[-1])
            except Exception as exc:  # a bug here must not stop the writer (requests wait on it)
                log.error("interaction_log_writer_error", error=f"{type(exc).__name__}: {exc}")
            finally:
                for item in submitted:
                    self._pending.pop(item.record.trace_id, None)
                    if not item.done.done():
                        item.done.set_result("failed")
                for _ in items:
                    self._queue.task_done()
                self._gauge()

    async def _run_erasure(self, job: _Erasure) -> None:
        try:
            erased = await self._erase(job.session_id)
        except BaseException as exc:
            if not job.done.done():
                job.done.set_exception(_unavailable(exc))
            if not isinstance(exc, Exception):
                raise
            return
        if not job.done.done():
            job.done.set_result(erased)

    async def _erase(self, session_id: str) -> int:
        error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                erased = await self.log.erase_session(session_id)
            except Exception as exc:
                error = exc
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(self.backoff_s * 2**attempt)
                continue
            await self._erase_spilled(session_id)
            return erased
        assert error is not None
        log.error("interaction_log_erase_failed", error=f"{type(error).__name__}: {error}")
        raise error

    async def _write(self, submitted: list[_Submitted]) -> None:
        """Write the records (retried, then one by one, then spilled) and settle their receipts."""
        batch = [item.record for item in submitted]
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
            _settle(submitted, "written")
            return
        if len(batch) > 1:  # one bad record must not take the others down with it
            for item in submitted:
                await self._write([item])
            return
        log.error(
            "interaction_log_write_failed",
            error=f"{type(error).__name__}: {error}",
            records=len(batch),
            trace_ids=[r.trace_id for r in batch[:20]],
            spill_path=str(self.spill_path) if self.spill_path else None,
        )
        self._count("failed", len(batch))
        _settle(submitted, "spilled" if await self._spill(batch) else "failed")

    async def _spill(self, batch: list[InteractionRecord]) -> bool:
        """Append ``batch`` to the spill file (flushed to disk); whether it is there."""
        path = self.spill_path
        if path is None:
            return False
        lines = "".join(json.dumps(r.as_row(), default=str) + "\n" for r in batch)

        def append() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())

        try:
            await asyncio.to_thread(append)
        except (OSError, ValueError) as exc:
            log.error("interaction_log_spill_failed", error=str(exc), records=len(batch))
            return False
        return True

    async def _erase_spilled(self, session_id: str) -> None:
        """Erase the session's records in the spill file (rewritten whole, then swapped in)."""
        path = self.spill_path
        if path is None:
            return

        def rewrite() -> None:
            if not path.exists():
                return
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            changed = [_erased_line(line, session_id) for line in lines]
            if changed == lines:
                return
            scratch = path.with_name(path.name + ".tmp")
            scratch.write_text("".join(changed), encoding="utf-8")
            os.replace(scratch, path)

        try:
            await asyncio.to_thread(rewrite)
        except OSError as exc:
            log.error("interaction_log_spill_erase_failed", error=str(exc))
            raise ServiceNotReady(f"the interaction log spill file is unavailable: {exc}") from exc

    def _count(self, outcome: str, count: int = 1) -> None:
        if self.metrics is not None and count:
            self.metrics.interactions(outcome, count)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.interaction_queue.set(self._queue.qsize())


def _settle(submitted: list[_Submitted], outcome: Outcome) -> None:
    for item in submitted:
        if not item.done.done():
            item.done.set_result(outcome)


def _erased_line(line: str, session_id: str) -> str:
    """A spill-file line, erased when it is a record of ``session_id``."""
    try:
        row: Any = json.loads(line)
    except ValueError:
        return line
    if not isinstance(row, dict) or row.get("session_id") != session_id or row.get("deleted_at"):
        return line
    details = row.get("details")
    row.update(
        request_text="",
        response_text="",
        details=erased_details(details if isinstance(details, dict) else {}),
        deleted_at=str(utc_now()),
    )
    return json.dumps(row, default=str) + "\n"


def _unavailable(exc: BaseException) -> Exception:
    """What an erasure that did not complete raises to its caller."""
    if isinstance(exc, ServiceNotReady):
        return exc
    return ServiceNotReady(f"the interaction log could not erase the session: {type(exc).__name__}")
