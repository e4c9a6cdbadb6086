"""The spend ledger: one row per model call made for a key, kept for audits and budget recovery.

Each row holds the key id, the request's trace id, the model that answered (or was asked), the
worst-case cost reserved before the call, the actual cost after it, the tokens, the time and
whether the call succeeded. The budget counters are rebuilt from it when they are lost (a process
restart with the in-process backend, a flushed Redis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

CallStatus = Literal["ok", "error"]


@dataclass(frozen=True)
class SpendEntry:
    """One model call's cost. ``actual_usd`` is 0 for calls that failed."""

    key_id: str
    model: str
    reserved_usd: float
    actual_usd: float
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime
    status: CallStatus = "ok"
    trace_id: str = ""


class SpendLedger(Protocol):
    """Where spend rows live. Implementations: :class:`~genai_factory.gateway.sql_store.SqlSpendLedger`.

    Contract: ``record`` appends rows atomically (all or none); ``spent`` sums ``actual_usd`` of a
    key's rows created at or after ``since``.
    """

    async def record(self, entries: Sequence[SpendEntry]) -> None: ...

    async def spent(self, key_id: str, since: datetime) -> float: ...

    async def entries(self, key_id: str | None = None, *, limit: int = 100) -> list[SpendEntry]: ...
