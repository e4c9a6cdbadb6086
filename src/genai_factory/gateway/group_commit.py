"""``GroupCommitLedger``: concurrent requests share one ledger transaction instead of one each.

Every request writes its spend rows before its response starts (so a client that got its answer
finds it in the ledger). Done one transaction per request, that is a worker-thread hop, a
connection checkout and a commit per request, and under load the requests queue for the database.
Here a request hands its rows over and waits; one writer task takes every row handed over so far
and writes them in one transaction, while the rows arriving meanwhile wait for the next one. A
quiet service writes each request's rows at once, as before; a busy one writes many per commit.

Each call stays all-or-none: its rows are in exactly one transaction, and when that transaction
fails every call in it gets the error (no row of theirs was written). Budgets are not affected:
the reservation is the atomic in-memory or Redis counter (:mod:`genai_factory.gateway.budgets`),
taken before the model call; the ledger is the audit trail and the seed of lost counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from genai_factory.gateway.ledger import SpendEntry, SpendLedger

_Waiting = tuple[list[SpendEntry], "asyncio.Future[None]"]


class GroupCommitLedger:
    """A :class:`SpendLedger` that batches concurrent ``record`` calls (see the module).

    Args:
        inner: the ledger that stores the rows.
        max_rows: rows per transaction at most (calls are never split).
    """

    def __init__(self, inner: SpendLedger, *, max_rows: int = 1000) -> None:
        self.inner = inner
        self.max_rows = max_rows
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        #: Transactions written (for tests and diagnostics).
        self.commits = 0

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        """Write ``entries`` (all or none) together with the calls waiting at the same time."""
        if not entries:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(entries), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="spend-ledger-writer")
        await done

    def _next_batch(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        rows = 0
        while self._waiting and (not batch or rows + len(self._waiting[0][0]) <= self.max_rows):
            waiting = self._waiting.pop(0)
            batch.append(waiting)
            rows += len(waiting[0])
        return batch

    async def _drain(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = self._next_batch()
                try:
                    await self.inner.record([row for rows, _ in batch for row in rows])
                except Exception as exc:
                    _settle(batch, exc)
                    continue
                self.commits += 1
                _settle(batch, None)
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            _settle(batch, None, cancel=True)
            _settle(self._waiting, None, cancel=True)
            self._waiting.clear()
            raise

    async def flush(self) -> None:
        """Wait until every row handed over so far is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def spent(self, key_id: str, since: datetime) -> float:
        return await self.inner.spent(key_id, since)

    async def entries(self, key_id: str | None = None, *, limit: int = 100) -> list[SpendEntry]:
        return await self.inner.entries(key_id, limit=limit)


def _settle(batch: list[_Waiting], error: Exception | None, *, cancel: bool = False) -> None:
    for _, done in batch:
        if done.done():
            continue  # the caller was cancelled; its rows were written (or not) all the same
        if cancel:
            done.cancel()
        elif error is not None:
            done.set_exception(error)
        else:
            done.set_result(None)
