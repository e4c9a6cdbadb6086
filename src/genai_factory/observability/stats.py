"""Operations statistics over a recent window: what the operations page and ``/v1/admin/stats`` show.

The figures come from the interaction log (one row per answered, failed, blocked or cancelled
request): request and error counts, p50/p95 latency, tokens and cost per API key, and the guard
events found in each row's ``safety`` JSON. The breaker states are read live from the model chain.

Only the columns needed are read, newest first, and at most ``limit`` rows: on a busy service the
window is cut to its newest rows and the answer says so (``truncated``), rather than loading an
unbounded number of rows into memory. Percentiles are computed here, in Python, over those rows, so
SQLite and PostgreSQL give the same figures.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from genai_factory.exceptions import ServiceNotReady
from genai_factory.llm.breaker import CircuitBreakerModel
from genai_factory.messages import UtcDatetime
from genai_factory.observability.interaction_store import interactions_table
from genai_factory.observability.interactions import utc_now
from genai_factory.observability.metrics import ANONYMOUS

T = TypeVar("T")

#: Rows read per window at most (newest first).
DEFAULT_ROW_LIMIT = 50_000
#: Key rows listed at most (the highest cost first); the rest are summed into one row.
MAX_KEYS = 50
OTHER_KEYS = "(other keys)"


@dataclass(frozen=True)
class StatsRow:
    """The columns of one interaction that the statistics need."""

    status: str
    key_id: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    safety: Any = None


class KeyUsage(BaseModel):
    """Requests, tokens and cost of one API key in the window (``anonymous``: auth off)."""

    key_id: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class GuardEvent(BaseModel):
    """How often a guard took an action at a stage (``input``, ``output``, ``sources``)."""

    guard: str
    action: str
    stage: str
    count: int


class BreakerStatus(BaseModel):
    """The circuit breaker of one backend, as it reads now."""

    backend: str
    state: str


class OpsStats(BaseModel):
    """The operations figures of one window (see the module docstring)."""

    window_minutes: int
    since: UtcDatetime = Field(description="Start of the window (UTC).")
    generated_at: UtcDatetime
    rows: int = Field(description="Interaction rows the figures are computed from.")
    truncated: bool = Field(description="The window held more rows than were read.")
    requests: int
    errors: int
    by_status: dict[str, int]
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    keys: list[KeyUsage]
    guard_events: list[GuardEvent]
    breakers: list[BreakerStatus]


def percentiles(values: Sequence[float], quantiles: Sequence[float]) -> list[float | None]:
    """The ``quantiles`` (0-100) of ``values`` by linear interpolation; ``None`` when empty."""
    if not values:
        return [None for _ in quantiles]
    found = np.percentile(np.asarray(values, dtype=np.float64), list(quantiles))
    return [round(float(v), 2) for v in found]


def _verdict_events(stage: str, verdicts: Any) -> Iterable[tuple[str, str, str]]:
    if not isinstance(verdicts, list):
        return
    for verdict in verdicts:
        if isinstance(verdict, Mapping):
            guard = str(verdict.get("guard") or "unknown")
            action = str(verdict.get("action") or "allow")
            # A verdict is kept only when flagged: "allow" then means noticed but let through.
            yield guard, "flag" if action == "allow" else action, stage


def guard_events_of(safety: Any) -> list[tuple[str, str, str]]:
    """``(guard, action, stage)`` of every guard event in one row's ``safety`` JSON.

    An answered request holds the safety report (``input`` and ``output`` verdicts, and the
    ``dropped_sources`` a guard removed from the retrieved context); a blocked request holds
    ``{"blocked": true, "reason": ..., "guard": ..., "stage": ...}`` (records written before the
    guard and stage were kept fall back to the reason and ``request``).
    """
    if not isinstance(safety, Mapping):
        return []
    if safety.get("blocked"):
        guard = safety.get("guard") or safety.get("reason") or "unknown"
        return [(str(guard), "block", str(safety.get("stage") or "request"))]
    events = [*_verdict_events("input", safety.get("input"))]
    events += _verdict_events("output", safety.get("output"))
    for dropped in safety.get("dropped_sources") or []:
        if isinstance(dropped, Mapping):
            events.append((str(dropped.get("guard") or "unknown"), "drop", "sources"))
    return events


def _key_rows(usage: dict[str, KeyUsage]) -> list[KeyUsage]:
    ranked = sorted(usage.values(), key=lambda k: (-k.cost_usd, -k.requests, k.key_id))
    if len(ranked) <= MAX_KEYS:
        return ranked
    shown, rest = ranked[: MAX_KEYS - 1], ranked[MAX_KEYS - 1 :]
    other = KeyUsage(key_id=OTHER_KEYS)
    for row in rest:
        other.requests += row.requests
        other.errors += row.errors
        other.prompt_tokens += row.prompt_tokens
        other.completion_tokens += row.completion_tokens
        other.cost_usd += row.cost_usd
    return [*shown, other]


def summarize(
    rows: Sequence[StatsRow],
    *,
    window_minutes: int,
    since: datetime,
    truncated: bool = False,
    breakers: Sequence[BreakerStatus] = (),
) -> OpsStats:
    """The figures of ``rows`` (pure: no I/O)."""
    by_status: Counter[str] = Counter(row.status for row in rows)
    usage: dict[str, KeyUsage] = {}
    events: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        key = row.key_id or ANONYMOUS
        entry = usage.setdefault(key, KeyUsage(key_id=key))
        entry.requests += 1
        entry.errors += row.status == "error"
        entry.prompt_tokens += row.prompt_tokens
        entry.completion_tokens += row.completion_tokens
        entry.cost_usd += row.cost_usd
        events.update(guard_events_of(row.safety))
    for entry in usage.values():
        entry.cost_usd = round(entry.cost_usd, 8)
    # Latency of the requests that were served: blocks and errors end early and would flatter it.
    latencies = [row.latency_ms for row in rows if row.status == "ok"]
    p50, p95 = percentiles(latencies, (50, 95))
    return OpsStats(
        window_minutes=window_minutes,
        since=since,
        generated_at=utc_now(),
        rows=len(rows),
        truncated=truncated,
        requests=len(rows),
        errors=by_status.get("error", 0),
        by_status=dict(sorted(by_status.items())),
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        prompt_tokens=sum(row.prompt_tokens for row in rows),
        completion_tokens=sum(row.completion_tokens for row in rows),
        cost_usd=round(sum(row.cost_usd for row in rows), 8),
        keys=_key_rows(usage),
        guard_events=[
            GuardEvent(guard=guard, action=action, stage=stage, count=count)
            for (guard, action, stage), count in sorted(events.items())
        ],
        breakers=list(breakers),
    )


def read_window(
    engine: Engine, since: datetime, limit: int, columns: Sequence[Any], make: Callable[..., T]
) -> tuple[list[T], bool]:
    """``columns`` of the rows logged since ``since``, newest first, each made into ``make(**row)``:
    at most ``limit`` rows, and whether there were more. Blocking."""
    query = (
        sa.select(*columns)
        .where(interactions_table.c.created_at >= since)
        .order_by(interactions_table.c.id.desc())
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        rows = [make(**row._asdict()) for row in conn.execute(query)]
    return rows[:limit], len(rows) > limit


def read_rows(engine: Engine, since: datetime, limit: int) -> tuple[list[StatsRow], bool]:
    """The window's rows for :func:`compute_stats` (see :func:`read_window`). Blocking."""
    table = interactions_table
    columns = [
        table.c.status,
        table.c.key_id,
        table.c.prompt_tokens,
        table.c.completion_tokens,
        table.c.cost_usd,
        table.c.latency_ms,
        table.c.safety,
    ]
    return read_window(engine, since, limit, columns, StatsRow)


async def window_stats(
    engine: Engine,
    *,
    minutes: int,
    breakers: Sequence[BreakerStatus] = (),
    limit: int = DEFAULT_ROW_LIMIT,
) -> OpsStats:
    """The figures of the last ``minutes`` minutes (the query runs in a worker thread).

    Raises:
        ServiceNotReady: the interaction log's database does not answer.
    """
    since = utc_now() - timedelta(minutes=minutes)
    try:
        rows, truncated = await asyncio.to_thread(read_rows, engine, since, limit)
    except SQLAlchemyError as exc:
        raise ServiceNotReady(f"the interaction log is unavailable: {type(exc).__name__}") from exc
    return summarize(
        rows, window_minutes=minutes, since=since, truncated=truncated, breakers=breakers
    )


def breaker_states(model: Any, seen: Mapping[str, str] | None = None) -> list[BreakerStatus]:
    """The state of every circuit breaker in the model chain under ``model``, in chain order.

    Wrappers are followed through ``inner`` (retry, breaker, metering, tracing ...) and ``models``
    (the fallback chain). ``seen`` holds the last reported state of backends whose breaker is not
    reachable this way; they are listed after the others.
    """
    found: dict[str, str] = {}
    pending: list[Any] = [model]
    visited: set[int] = set()
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, CircuitBreakerModel):
            found.setdefault(current.name, str(current.state))
        pending.append(getattr(current, "inner", None))
        pending.extend(getattr(current, "models", None) or ())
    for name, state in (seen or {}).items():
        found.setdefault(name, str(state))
    return [BreakerStatus(backend=name, state=state) for name, state in found.items()]
