"""Tracing: the per-app provider, stage spans and the ``TracedModel`` wrapper (no network)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from genai_factory.config import ObservabilitySettings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import ChatOptions, Message
from genai_factory.observability.context import RequestTelemetry, enter_telemetry, leave_telemetry
from genai_factory.observability.traced_model import TracedModel
from genai_factory.observability.tracing import (
    build_tracer_provider,
    current_trace_id,
    stage_span,
)
from genai_factory.testing.fakes import FakeChatModel

QUESTION = [Message.user("what is a circuit breaker")]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    made = build_tracer_provider(ObservabilitySettings())
    made.add_span_processor(SimpleSpanProcessor(exporter))
    yield made
    made.shutdown()


@pytest.fixture
def in_request(provider: TracerProvider) -> Iterator[None]:
    token = enter_telemetry(RequestTelemetry(tracer=provider.get_tracer("test")))
    yield
    leave_telemetry(token)


def test_the_provider_exports_over_otlp_only_when_configured() -> None:
    quiet = build_tracer_provider(ObservabilitySettings())
    assert quiet._active_span_processor._span_processors == ()
    loud = build_tracer_provider(
        ObservabilitySettings(otlp_endpoint="http://127.0.0.1:4318/v1/traces")
    )
    (processor,) = loud._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    loud.shutdown()  # no span was made, so nothing is sent
    quiet.shutdown()


def test_outside_a_request_nothing_is_traced() -> None:
    assert current_trace_id() is None
    with stage_span("retrieval") as span:
        assert span is None


@pytest.mark.usefixtures("in_request")
def test_stage_spans_nest_under_the_current_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with provider.get_tracer("test").start_as_current_span("request") as root:
        trace_id = current_trace_id()
        with stage_span("retrieval", top_k=3):
            pass
    assert trace_id == format(root.get_span_context().trace_id, "032x")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    retrieval = spans["retrieval"]
    assert retrieval.parent is not None and retrieval.parent.span_id == root.context.span_id
    assert retrieval.attributes == {"genai.stage": "retrieval", "top_k": 3}


@pytest.mark.usefixtures("in_request")
async def test_traced_model_makes_one_llm_span_per_call(exporter: InMemorySpanExporter) -> None:
    model = TracedModel(FakeChatModel(["a short answer"], name="m1"))
    response = await model.chat(QUESTION, ChatOptions(max_tokens=20, temperature=0.5))
    (span,) = exporter.get_finished_spans()
    assert span.name == "llm" and span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.model"] == "m1"
    assert attributes["gen_ai.request.max_tokens"] == 20
    assert attributes["gen_ai.usage.output_tokens"] == response.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.usefixtures("in_request")
async def test_traced_streams_and_failures(exporter: InMemorySpanExporter) -> None:
    model = TracedModel(FakeChatModel(["one two three", ProviderUnavailable("down")]))
    pieces = [delta.text async for delta in model.stream(QUESTION)]
    assert "".join(pieces) == "one two three"
    with pytest.raises(ProviderUnavailable):
        await model.chat(QUESTION)
    streamed, failed = exporter.get_finished_spans()
    assert dict(streamed.attributes or {})["gen_ai.usage.output_tokens"] == estimate_tokens(
        "one two three"
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events[0].name == "exception"


async def test_traced_model_passes_through_outside_a_request() -> None:
    inner = FakeChatModel(["hi"])
    model = TracedModel(inner)
    assert (await model.chat(QUESTION)).text == "hi"
    pieces = [d.text async for d in model.stream(QUESTION)]
    assert pieces[0] == "echo: "
    assert model.name == inner.name and model.count_tokens("a b") == inner.count_tokens("a b")
