"""The telemetry of the request being served, reachable from code deep in the pipeline.

The observability middleware makes a :class:`RequestTelemetry` current for each HTTP request: the
application's tracer and metrics. Pipeline code (the assistant's stages, the guards) reaches them
through :func:`current_telemetry` instead of taking them as arguments; outside a request (the CLI,
jobs, unit tests) there is none and the helpers here do nothing.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from opentelemetry.trace import Tracer

from genai_factory.observability.metrics import Metrics


@dataclass(frozen=True)
class RequestTelemetry:
    """The tracer and metrics of the application serving the current request."""

    tracer: Tracer | None = None
    metrics: Metrics | None = None


_current: ContextVar[RequestTelemetry | None] = ContextVar("genai_telemetry", default=None)


def current_telemetry() -> RequestTelemetry | None:
    return _current.get()


def enter_telemetry(telemetry: RequestTelemetry) -> Token[RequestTelemetry | None]:
    return _current.set(telemetry)


def leave_telemetry(token: Token[RequestTelemetry | None]) -> None:
    _current.reset(token)


def record_guard_block(guard: str, stage: str = "input") -> None:
    """Count one block by ``guard`` (``stage`` is ``input`` or ``output``) in the request's metrics.

    For the safety pipeline: call it when a guard blocks; it does nothing outside a request.
    """
    telemetry = _current.get()
    if telemetry is not None and telemetry.metrics is not None:
        telemetry.metrics.guard_blocked(guard, stage)
