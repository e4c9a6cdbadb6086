"""OpenTelemetry tracing: one ``TracerProvider`` per application, a span per request and stage.

The provider belongs to the application (never the process-wide global one). It exports over
OTLP/HTTP when ``observability.otlp_endpoint`` is set and exports nothing otherwise, but spans are
made either way: the root span of a request gives the request its trace id, which is the
``trace_id`` of the answer, of the spend ledger rows, of the interaction record and of the logs.
Each request starts its own trace; an incoming W3C ``traceparent`` is kept as a span link.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import Span, format_trace_id

from genai_factory import __version__
from genai_factory.config import ObservabilitySettings
from genai_factory.observability.context import current_telemetry

TRACER_NAME = "genai_factory"


def build_tracer_provider(settings: ObservabilitySettings) -> TracerProvider:
    """A provider for one application; with ``otlp_endpoint`` set, it exports there in batches."""
    resource = Resource.create(
        {"service.name": settings.service_name, "service.version": __version__}
    )
    provider = TracerProvider(
        resource=resource,
        sampler=TraceIdRatioBased(settings.trace_sample_ratio),
        shutdown_on_exit=False,
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=settings.otlp_endpoint, headers=dict(settings.otlp_headers) or None
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def current_trace_id() -> str | None:
    """The trace id (32 hex characters) of the current span, if a request is being traced."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


@contextmanager
def stage_span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A span for one pipeline stage (``retrieval``, ``input_guards`` ...) of the current request.

    Yields ``None`` (and traces nothing) outside a traced request. Do not hold it across a
    ``yield`` of an async generator: the span is made current for the block.
    """
    telemetry = current_telemetry()
    if telemetry is None or telemetry.tracer is None:
        yield None
        return
    with telemetry.tracer.start_as_current_span(
        name, attributes={"genai.stage": name, **attributes}
    ) as span:
        yield span
