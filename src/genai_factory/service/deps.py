"""FastAPI dependencies: reach the process's components through the app state.

They are ``async`` although they do not wait for anything: FastAPI runs a plain ``def``
dependency in a worker thread, two thread hops per request for a few attribute reads.
"""

from __future__ import annotations

from fastapi import Request

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import InvalidRequestError, ServiceNotReady
from genai_factory.gateway.admin import admin_key, gateway
from genai_factory.observability.assembly import Telemetry


def _components(request: Request) -> Components:
    found: Components | None = getattr(request.app.state, "components", None)
    if found is None:
        raise ServiceNotReady("the service is starting")
    return found


async def components(request: Request) -> Components:
    """The components built at start-up (they may still be loading)."""
    return _components(request)


async def ready_components(request: Request) -> Components:
    """The components, once the model and the index are loaded; 503 before that."""
    found = _components(request)
    found.require_ready()
    return found


async def telemetry(request: Request) -> Telemetry:
    """The application's metrics, tracing, interaction log and cost monitor (opened at start-up)."""
    found: Telemetry | None = getattr(request.app.state, "telemetry", None)
    if found is None:
        raise ServiceNotReady("the service is starting")
    return found


async def check_reveal(request: Request, parts: Components) -> None:
    """``reveal_pii`` needs reversible redaction and an admin key (401/403 as the admin API)."""
    if not parts.settings.safety.reversible_redaction:
        raise InvalidRequestError("reveal_pii needs safety.reversible_redaction to be on")
    await admin_key(request, gateway(request))
