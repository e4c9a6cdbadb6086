"""The operations page's data: ``GET /v1/admin/stats``, ``/v1/admin/stats/series`` and
``/v1/admin/mlops``.

Requests, errors, p50/p95 latency, tokens and cost per API key and guard events come from the
interaction log; breaker states are read live from the model chain (see
:mod:`genai_factory.observability.stats`). The series cuts the same window into buckets for the
page's charts (:mod:`genai_factory.observability.series`). The MLOps state (champions and
challengers, the last drift verdict, the newest job runs and their gates) is read from the MLflow
registry (:mod:`genai_factory.mlops.state`); it never fails the page: a store that does not answer
in time, or at all, gives an empty state with the reason.

With auth on it needs an admin key, like every admin endpoint. With auth off it is open: auth is
only ever off on a loopback address with no key to present, and the figures are then the local
user's own; the key endpoints stay closed even then, since they change who may use the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import ServiceNotReady
from genai_factory.gateway.admin import admin_key, gateway
from genai_factory.gateway.keys import ApiKey
from genai_factory.gateway.service import GatewayService
from genai_factory.mlops.state import MlopsState, read_state_safely
from genai_factory.observability.assembly import Telemetry
from genai_factory.observability.interaction_store import SqlInteractionLog
from genai_factory.observability.series import (
    DEFAULT_BUCKETS,
    MAX_BUCKETS,
    OpsSeries,
    window_series,
)
from genai_factory.observability.stats import OpsStats, breaker_states, window_stats
from genai_factory.service.deps import components, telemetry

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/admin", tags=["admin"])

#: How long a stats request waits for queued interaction records to be written first.
FLUSH_WAIT_S = 2.0
MAX_MINUTES = 7 * 24 * 60
#: How long the MLOps state may take to read before an empty state with the reason is answered.
MLOPS_TIMEOUT_S = 10.0
#: A read MLOps state is answered again for this long (the page refreshes every few seconds).
MLOPS_CACHE_S = 5.0


async def stats_reader(
    request: Request, service: Annotated[GatewayService, Depends(gateway)]
) -> ApiKey | None:
    """The admin key of the request; ``None`` when auth is off (see the module docstring)."""
    if not service.enforcing:
        return None
    return await admin_key(request, service)


async def _flushed_log(tele: Telemetry) -> SqlInteractionLog:
    """The interaction log, once the records queued so far are written (or ``FLUSH_WAIT_S``)."""
    interactions = tele.interactions.log
    if not isinstance(interactions, SqlInteractionLog):
        raise ServiceNotReady("the interaction log has no database to read statistics from")
    # A durable log wrote each answered request's record before its response; a log that is not
    # durable writes it just after: take the ones just answered.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tele.interactions.flush(), FLUSH_WAIT_S)
    return interactions


@router.get("/stats")
async def stats(
    request: Request,
    _: Annotated[ApiKey | None, Depends(stats_reader)],
    tele: Annotated[Telemetry, Depends(telemetry)],
    minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES)] = 60,
) -> OpsStats:
    """Requests, errors, p50/p95 latency, per-key tokens and cost, guard events and breakers."""
    interactions = await _flushed_log(tele)
    parts = getattr(request.app.state, "components", None)
    breakers = breaker_states(parts.model, parts.breaker_states) if parts is not None else []
    return await window_stats(interactions.engine, minutes=minutes, breakers=breakers)


@router.get("/stats/series")
async def stats_series(
    _: Annotated[ApiKey | None, Depends(stats_reader)],
    tele: Annotated[Telemetry, Depends(telemetry)],
    minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES)] = 60,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = DEFAULT_BUCKETS,
) -> OpsSeries:
    """Per time bucket: requests, errors, cost and p50/p95 latency, end to end and per stage."""
    interactions = await _flushed_log(tele)
    return await window_series(interactions.engine, minutes=minutes, buckets=buckets)


@router.get("/mlops")
async def mlops(
    request: Request,
    _: Annotated[ApiKey | None, Depends(stats_reader)],
    parts: Annotated[Components, Depends(components)],
) -> MlopsState:
    """Champion and challenger of each registered model, the last drift verdict, the newest job
    runs with their gate results; empty (with ``error`` set) when the store cannot be read."""
    cached: tuple[float, MlopsState] | None = getattr(request.app.state, "mlops_state", None)
    if cached is not None and time.monotonic() - cached[0] < MLOPS_CACHE_S:
        return cached[1]
    state = await read_state_safely(parts.settings, timeout_s=MLOPS_TIMEOUT_S)
    request.app.state.mlops_state = (time.monotonic(), state)
    return state
