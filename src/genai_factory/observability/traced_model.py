"""``TracedModel``: a ``ChatModel`` wrapper that makes an ``llm`` span for every call.

The span carries the OpenTelemetry GenAI attributes (requested and answering model, max tokens,
temperature, input and output tokens, finish reason) and records failures. It uses the tracer of
the request being served (:mod:`genai_factory.observability.context`), so outside a request it
only passes calls through. Put it outermost, so one call is one span whatever retries happen inside.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message, Usage
from genai_factory.observability.context import current_telemetry


def _request_attributes(name: str, options: ChatOptions) -> dict[str, str | int | float]:
    return {
        "genai.stage": "llm",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": name,
        "gen_ai.request.max_tokens": options.max_tokens,
        "gen_ai.request.temperature": options.temperature,
    }


def _finish(span: Span, model: str, usage: Usage | None, finish_reason: str | None) -> None:
    if model:
        span.set_attribute("gen_ai.response.model", model)
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
    if finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])


class TracedModel(ChatModel):
    """Traces ``inner``'s calls (see the module docstring). ``tracer`` overrides the request's."""

    def __init__(self, inner: ChatModel, tracer: Tracer | None = None) -> None:
        self.inner = inner
        self.tracer = tracer
        self.name = inner.name
        self.adopt_capabilities(inner)

    def _tracer(self) -> Tracer | None:
        if self.tracer is not None:
            return self.tracer
        telemetry = current_telemetry()
        return telemetry.tracer if telemetry is not None else None

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        tracer = self._tracer()
        if tracer is None:
            return await self.inner.chat(messages, options)
        opts = options or ChatOptions()
        with tracer.start_as_current_span(
            "llm", kind=SpanKind.CLIENT, attributes=_request_attributes(self.name, opts)
        ) as span:
            response = await self.inner.chat(messages, options)
            _finish(span, response.model, response.usage, response.finish_reason)
            return response

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        tracer = self._tracer()
        if tracer is None:
            async for delta in self.inner.stream(messages, options):
                yield delta
            return
        opts = options or ChatOptions()
        # Not made current: the span outlives this generator's suspensions (see stage_span).
        span = tracer.start_span(
            "llm", kind=SpanKind.CLIENT, attributes=_request_attributes(self.name, opts)
        )
        model, usage, finish = "", None, None
        try:
            async for delta in self.inner.stream(messages, options):
                model = delta.model or model
                usage = delta.usage or usage
                finish = delta.finish_reason or finish
                yield delta
        except GeneratorExit:
            finish = finish or "cancelled"
            raise
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            _finish(span, model, usage, finish)
            span.end()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
