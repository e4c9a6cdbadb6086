"""``GET /metrics``: the Prometheus metrics of this instance (no key needed, like the probes)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from genai_factory.observability.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every metric of this instance in the Prometheus text format."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
