"""FastAPI dependencies: reach the process's components through the app state."""

from __future__ import annotations

from fastapi import Request

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import ServiceNotReady
from genai_factory.observability.assembly import Telemetry


def components(request: Request) -> Components:
    """The components built at start-up (they may still be loading)."""
    found: Components | None = getattr(request.app.state, "components", None)
    if found is None:
        raise ServiceNotReady("the service is starting")
    return found


def ready_components(request: Request) -> Components:
    """The components, once the model and the index are loaded; 503 before that."""
    found = components(request)
    found.require_ready()
    return found


def telemetry(request: Request) -> Telemetry:
    """The application's metrics, tracing, interaction log and cost monitor (opened at start-up)."""
    found: Telemetry | None = getattr(request.app.state, "telemetry", None)
    if found is None:
        raise ServiceNotReady("the service is starting")
    return found
