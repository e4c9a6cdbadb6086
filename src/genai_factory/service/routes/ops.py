"""``GET /v1/admin/stats``: the operations figures of a recent window (the operations page's data).

Requests, errors, p50/p95 latency, tokens and cost per API key and guard events come from the
interaction log; breaker states are read live from the model chain (see
:mod:`genai_factory.observability.stats`).

With auth on it needs an admin key, like every admin endpoint. With auth off it is open: auth is
only ever off on a loopback address with no key to present, and the figures are then the local
user's own; the key endpoints stay closed even then, since they change who may use the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from genai_factory.exceptions import ServiceNotReady
from genai_factory.gateway.admin import admin_key, gateway
from genai_factory.gateway.keys import ApiKey
from genai_factory.gateway.service import GatewayService
from genai_factory.observability.assembly import Telemetry
from genai_factory.observability.interaction_store import SqlInteractionLog
from genai_factory.observability.stats import OpsStats, breaker_states, window_stats
from genai_factory.service.deps import telemetry

router = APIRouter(prefix="/v1/admin", tags=["admin"])

#: How long a stats request waits for queued interaction records to be written first.
FLUSH_WAIT_S = 2.0
MAX_MINUTES = 7 * 24 * 60


async def stats_reader(
    request: Request, service: Annotated[GatewayService, Depends(gateway)]
) -> ApiKey | None:
    """The admin key of the request; ``None`` when auth is off (see the module docstring)."""
    if not service.enforcing:
        return None
    return await admin_key(request, service)


@router.get("/stats")
async def stats(
    request: Request,
    _: Annotated[ApiKey | None, Depends(stats_reader)],
    tele: Annotated[Telemetry, Depends(telemetry)],
    minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES)] = 60,
) -> OpsStats:
    """Requests, errors, p50/p95 latency, per-key tokens and cost, guard events and breakers."""
    log = tele.interactions.log
    if not isinstance(log, SqlInteractionLog):
        raise ServiceNotReady("the interaction log has no database to read statistics from")
    # Records are written after each response, in the background: take the ones just answered.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tele.interactions.flush(), FLUSH_WAIT_S)
    parts = getattr(request.app.state, "components", None)
    breakers = breaker_states(parts.model, parts.breaker_states) if parts is not None else []
    return await window_stats(log.engine, minutes=minutes, breakers=breakers)
