"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from genai_factory.assistant.assembly import Components
from genai_factory.service.deps import components
from genai_factory.service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up and serving HTTP."""
    return Health()


@router.get("/readyz", response_model=Readiness)
async def readyz(
    request: Request, parts: Annotated[Components, Depends(components)]
) -> JSONResponse:
    """Ready when the model is loaded and the index is open; 503 until then."""
    body = Readiness(
        ready=parts.ready,
        model=parts.model.name,
        model_loaded=parts.ready,
        index_chunks=await parts.index.count(),
        breakers=dict(parts.breaker_states),
    )
    error = getattr(request.app.state, "startup_error", None)
    content = body.model_dump()
    if error:
        content["error"] = error
    return JSONResponse(content, status_code=200 if parts.ready else 503)
