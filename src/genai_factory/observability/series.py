"""Operations figures as a time series: the charts of the operations page and
``/v1/admin/stats/series``.

The window is cut into equal buckets; each bucket counts the requests and errors that started in it,
sums their cost and gives the p50/p95 latency of the requests served in it, both end to end and per
stage (the ``stages_ms`` timings of each interaction row: retrieval, guards, the model ...). Like
:mod:`genai_factory.observability.stats`, at most ``limit`` rows are read, newest first, and the
answer says when the window held more (``truncated``); percentiles are computed in Python, so SQLite
and PostgreSQL give the same figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from genai_factory.exceptions import ServiceNotReady
from genai_factory.messages import UtcDatetime
from genai_factory.observability.interaction_store import interactions_table
from genai_factory.observability.interactions import utc_now
from genai_factory.observability.stats import DEFAULT_ROW_LIMIT, percentiles, read_window

#: Buckets per window when the caller names none, and at most.
DEFAULT_BUCKETS = 30
MAX_BUCKETS = 240


@dataclass(frozen=True)
class SeriesRow:
    """The columns of one interaction that the series needs."""

    created_at: datetime
    status: str
    cost_usd: float
    latency_ms: float
    stages_ms: Any = None


class StageLatency(BaseModel):
    """p50/p95 of one stage over the served requests of a bucket that timed it."""

    stage: str
    count: int
    p50_ms: float | None
    p95_ms: float | None


class SeriesBucket(BaseModel):
    """The figures of one bucket ``[start, end)`` of the window."""

    start: UtcDatetime
    end: UtcDatetime
    requests: int
    errors: int
    cost_usd: float
    p50_latency_ms: float | None = Field(description="End to end, served requests only.")
    p95_latency_ms: float | None
    stages: list[StageLatency]


class OpsSeries(BaseModel):
    """The window cut into ``len(buckets)`` equal buckets, oldest first."""

    window_minutes: int
    bucket_seconds: float
    since: UtcDatetime = Field(description="Start of the window (UTC).")
    until: UtcDatetime = Field(description="End of the window (UTC): when it was computed.")
    rows: int = Field(description="Interaction rows the figures are computed from.")
    truncated: bool = Field(description="The window held more rows than were read.")
    stages: list[str] = Field(description="Every stage timed in the window, alphabetically.")
    buckets: list[SeriesBucket]


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)


def stage_timings(stages_ms: Any) -> dict[str, float]:
    """The numeric ``stage -> ms`` pairs of one row's ``stages_ms`` JSON (anything else dropped)."""
    if not isinstance(stages_ms, Mapping):
        return {}
    return {
        str(stage): float(ms)
        for stage, ms in stages_ms.items()
        if isinstance(ms, int | float) and not isinstance(ms, bool)
    }


def _add(tally: _Tally, row: SeriesRow) -> None:
    tally.requests += 1
    tally.errors += row.status == "error"
    tally.cost_usd += row.cost_usd
    # Blocks and errors end early and would flatter the latency: served requests only.
    if row.status == "ok":
        tally.latencies.append(row.latency_ms)
        for stage, ms in stage_timings(row.stages_ms).items():
            tally.stages.setdefault(stage, []).append(ms)


def _bucket(tally: _Tally, start: datetime, end: datetime) -> SeriesBucket:
    p50, p95 = percentiles(tally.latencies, (50, 95))
    stages = []
    for stage, values in sorted(tally.stages.items()):
        s50, s95 = percentiles(values, (50, 95))
        stages.append(StageLatency(stage=stage, count=len(values), p50_ms=s50, p95_ms=s95))
    return SeriesBucket(
        start=start,
        end=end,
        requests=tally.requests,
        errors=tally.errors,
        cost_usd=round(tally.cost_usd, 8),
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        stages=stages,
    )


def bucket_series(
    rows: Sequence[SeriesRow],
    *,
    since: datetime,
    until: datetime,
    buckets: int = DEFAULT_BUCKETS,
    truncated: bool = False,
) -> OpsSeries:
    """Cut ``[since, until]`` into ``buckets`` equal buckets and sum ``rows`` into them (pure).

    A row belongs to the bucket its ``created_at`` falls in; rows outside the window are ignored
    (a row stamped exactly at ``until`` goes to the last bucket). Empty buckets are kept, with
    zero counts and no latency, so a chart shows the gaps.
    """
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    if until <= since:
        raise ValueError("the window must end after it starts")
    width = (until - since) / buckets
    tallies = [_Tally() for _ in range(buckets)]
    for row in rows:
        if row.created_at < since or row.created_at > until:
            continue
        index = min(int((row.created_at - since) / width), buckets - 1)
        _add(tallies[index], row)
    stages = sorted({stage for tally in tallies for stage in tally.stages})
    edges = [since + width * i for i in range(buckets)] + [until]
    return OpsSeries(
        window_minutes=round((until - since).total_seconds() / 60),
        bucket_seconds=round(width.total_seconds(), 3),
        since=since,
        until=until,
        rows=sum(tally.requests for tally in tallies),
        truncated=truncated,
        stages=stages,
        buckets=[_bucket(tally, edges[i], edges[i + 1]) for i, tally in enumerate(tallies)],
    )


def read_series_rows(engine: Engine, since: datetime, limit: int) -> tuple[list[SeriesRow], bool]:
    """The window's rows for the series (see :func:`~.stats.read_window`). Blocking."""
    table = interactions_table
    columns = [
        table.c.created_at,
        table.c.status,
        table.c.cost_usd,
        table.c.latency_ms,
        table.c.stages_ms,
    ]
    return read_window(engine, since, limit, columns, SeriesRow)


async def window_series(
    engine: Engine,
    *,
    minutes: int,
    buckets: int = DEFAULT_BUCKETS,
    limit: int = DEFAULT_ROW_LIMIT,
) -> OpsSeries:
    """The series of the last ``minutes`` minutes (the query runs in a worker thread).

    Raises:
        ServiceNotReady: the interaction log's database does not answer.
    """
    until = utc_now()
    since = until - timedelta(minutes=minutes)
    try:
        rows, truncated = await asyncio.to_thread(read_series_rows, engine, since, limit)
    except SQLAlchemyError as exc:
        raise ServiceNotReady(f"the interaction log is unavailable: {type(exc).__name__}") from exc
    return bucket_series(rows, since=since, until=until, buckets=buckets, truncated=truncated)
