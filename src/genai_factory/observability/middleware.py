"""``ObservabilityMiddleware``: the trace id, root span, HTTP metrics and access log of each request.

Pure ASGI and outermost (around the gateway), so it sees every request, refused ones included. Per
HTTP request it:

* starts the root span (``SERVER``) on the application's tracer; its trace id becomes the request's
  trace id (``request.state.trace_id``, read by the gateway, the error handlers and the assistant),
  is bound into the structlog context (``trace_id`` in every log line) and is sent back in the
  ``X-Trace-Id`` header. An incoming ``traceparent`` is kept as a link, not as the parent, so every
  request has a trace of its own;
* makes the application's tracer and metrics current for pipeline code
  (:mod:`genai_factory.observability.context`);
* counts the request and its latency (to the end of the body, streams included) per route template
  and status, and writes one access-log line (``http_request``; probes and ``/metrics`` at debug).

The tracer and metrics come from ``app.state.telemetry`` and ``app.state.metrics`` at call time;
``routes`` are the application's routes, to label requests refused before routing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_factory.observability.context import RequestTelemetry, enter_telemetry, leave_telemetry
from genai_factory.observability.metrics import Metrics

log = structlog.get_logger("genai_factory.access")

#: Paths whose access-log lines are written at debug level (probes and scraping).
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"


def route_template(scope: Scope, routes: Sequence[BaseRoute] = ()) -> str:
    """The path template of the request (``/v1/sessions/{session_id}``), or ``unmatched``.

    A routed request names its route in the scope. A request refused before routing (by the
    gateway) is matched against ``routes``; raw paths are never used, so a client cannot make up
    label values.
    """
    route = scope.get("route")
    if route is None:
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED


def _incoming_links(scope: Scope) -> list[Link]:
    carrier = {"traceparent": Headers(scope=scope).get("traceparent", "")}
    if not carrier["traceparent"]:
        return []
    context = TraceContextTextMapPropagator().extract(carrier)
    remote = trace.get_current_span(context).get_span_context()
    return [Link(remote)] if remote.is_valid else []


def _root_span(tracer: Tracer | None, scope: Scope) -> AbstractContextManager[Span | None]:
    if tracer is None:
        return nullcontext(None)
    attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
    return tracer.start_as_current_span(
        f"{scope['method']} {scope['path']}",
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=_incoming_links(scope),
    )


def _trace_id_of(span: Span | None) -> str:
    if span is not None:
        context = span.get_span_context()
        if context.is_valid:
            return format_trace_id(context.trace_id)
    return uuid.uuid4().hex


class ObservabilityMiddleware:
    """Trace id, root span, metrics and access log for every HTTP request (see the module)."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute] = (), access_log: bool = True
    ) -> None:
        self.app = app
        self.routes = list(routes)
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: Any = getattr(scope.get("app"), "state", None)
        metrics: Metrics | None = getattr(state, "metrics", None)
        telemetry = getattr(state, "telemetry", None)
        tracer: Tracer | None = getattr(telemetry, "tracer", None)
        with _root_span(tracer, scope) as span:
            trace_id = _trace_id_of(span)
            scope.setdefault("state", {})["trace_id"] = trace_id
            token = enter_telemetry(RequestTelemetry(tracer=tracer, metrics=metrics))
            try:
                with structlog.contextvars.bound_contextvars(trace_id=trace_id):
                    await self._serve(scope, receive, send, trace_id, metrics, span)
            finally:
                leave_telemetry(token)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        trace_id: str,
        metrics: Metrics | None,
        span: Span | None,
    ) -> None:
        method = scope["method"]
        status = 500
        started = time.perf_counter()

        async def send_with_trace_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-trace-id", trace_id)
            await send(message)

        if metrics is not None:
            metrics.http_in_flight.labels(method).inc()
        try:
            await self.app(scope, receive, send_with_trace_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope, self.routes)
            if metrics is not None:
                metrics.http_in_flight.labels(method).dec()
                metrics.observe_http(method, route, status, elapsed)
            _finish_span(span, method, route, status)
            self._log(scope, route, status, elapsed)

    def _log(self, scope: Scope, route: str, status: int, elapsed: float) -> None:
        if not self.access_log:
            return
        emit = log.debug if scope["path"] in QUIET_PATHS else log.info
        emit(
            "http_request",
            method=scope["method"],
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


def _finish_span(span: Span | None, method: str, route: str, status: int) -> None:
    if span is None:
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
