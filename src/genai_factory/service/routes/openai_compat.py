"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client works against it (``base_url=http://HOST:PORT/v1``, ``api_key=<gateway key>``).
A completion runs the configured model chain (retry, breaker, fallbacks) behind the gateway, exactly
like ``/v1/assistant/generate``: its tokens count against the key's limits and its cost against its
budget, and it is written to the interaction log. It is the model alone, without retrieval or the
assistant's system prompt; the ``chat`` route's safety guards screen the user messages and the
answer, streamed or not (:mod:`genai_factory.service.chat_guards`). ``model`` must name a
configured model (the primary or a fallback); the chain answers either way, and the response's
``model`` says which model did. The completion id is ``chatcmpl-<trace id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from genai_factory.assistant.assembly import Components
from genai_factory.assistant.service import AssistantAnswer
from genai_factory.config import Settings
from genai_factory.exceptions import NotFoundError
from genai_factory.llm.tokens import estimate_prompt_tokens, estimate_tokens, priced
from genai_factory.messages import (
    ChatDelta,
    ChatOptions,
    ChatResponse,
    FinishReason,
    Message,
    Usage,
)
from genai_factory.observability.assembly import Telemetry
from genai_factory.service.chat_guards import ChatSafety
from genai_factory.service.deps import components, ready_components, telemetry
from genai_factory.service.openai_schemas import (
    FINISH_REASONS,
    AssistantMessageOut,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    CompletionUsage,
    ModelCard,
    ModelList,
)
from genai_factory.service.sse import primed, sse_event, sse_response, stream_error

router = APIRouter(prefix="/v1", tags=["openai"])

ENDPOINT = "chat_completions"
Parts = Annotated[Components, Depends(ready_components)]
Observed = Annotated[Telemetry, Depends(telemetry)]


def served_models(settings: Settings) -> list[str]:
    """The configured model ids: the primary, then the fallbacks (without repeats)."""
    ids = [settings.llm.model, *(backup.model for backup in settings.llm.fallbacks)]
    return list(dict.fromkeys(ids))


@router.get("/models")
async def list_models(parts: Annotated[Components, Depends(components)]) -> ModelList:
    """The models served by ``/v1/chat/completions``."""
    created = int(time.time())
    return ModelList(data=[ModelCard(id=m, created=created) for m in served_models(parts.settings)])


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, parts: Annotated[Components, Depends(components)]) -> ModelCard:
    """One served model; 404 for any other id."""
    if model_id not in served_models(parts.settings):
        raise NotFoundError(f"model {model_id!r} is not served here; GET /v1/models lists them")
    return ModelCard(id=model_id, created=int(time.time()))


def _options(body: ChatCompletionRequest, settings: Settings) -> ChatOptions:
    defaults = ChatOptions()
    return ChatOptions(
        max_tokens=body.max_completion_tokens or body.max_tokens or settings.llm.max_tokens,
        temperature=settings.llm.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        stop=body.stop_sequences(),
        seed=body.seed,
    )


def _request_text(messages: Sequence[Message]) -> str:
    """The request as the interaction log keeps it: the messages as JSON."""
    return json.dumps([{"role": m.role, "content": m.content} for m in messages])


def _as_answer(
    response: ChatResponse, trace_id: str, started: float, settings: Settings
) -> AssistantAnswer:
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return AssistantAnswer(
        answer=response.text,
        usage=priced(response.usage, response.model, settings.llm.pricing),
        latency_ms=elapsed,
        model=response.model,
        trace_id=trace_id,
        route="chat",
        finish_reason=response.finish_reason,
        stages_ms={"llm": elapsed},
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, parts: Parts, tele: Observed
) -> ChatCompletion | StreamingResponse:
    """An OpenAI chat completion, streamed (``"stream": true``, SSE) or not."""
    settings = parts.settings
    if body.model not in served_models(settings):
        raise NotFoundError(f"model {body.model!r} is not served here; GET /v1/models lists them")
    messages = [m.to_message() for m in body.messages]
    options = _options(body, settings)
    trace_id: str = request.state.trace_id
    text = _request_text(messages)
    guards = ChatSafety(parts.safety.pipeline if parts.safety is not None else None)
    started = time.perf_counter()
    if body.stream:
        with tele.observing(ENDPOINT, text, trace_id=trace_id, mode="chat"):
            messages = guards.screen_messages(messages)
            deltas = await primed(guards.stream(parts.model.stream(messages, options)))
        stream = _Stream(tele, settings, trace_id, messages, text, started, body.include_usage())
        return sse_response(stream.events(deltas))
    with tele.observing(ENDPOINT, text, trace_id=trace_id, mode="chat") as seen:
        messages = guards.screen_messages(messages)
        response = await parts.model.chat(messages, options)
        response = response.model_copy(update={"text": guards.answer(response.text)})
        seen.answer = _as_answer(response, trace_id, started, settings)
    return ChatCompletion(
        id=f"chatcmpl-{trace_id}",
        created=int(time.time()),
        model=response.model,
        choices=[
            Choice(
                message=AssistantMessageOut(content=response.text),
                finish_reason=FINISH_REASONS[response.finish_reason],
            )
        ],
        usage=CompletionUsage.of(response.usage),
    )


class _Stream:
    """One streamed completion: turns model deltas into OpenAI chunks and reports the outcome."""

    def __init__(
        self,
        tele: Telemetry,
        settings: Settings,
        trace_id: str,
        messages: list[Message],
        request_text: str,
        started: float,
        include_usage: bool,
    ) -> None:
        self.tele = tele
        self.settings = settings
        self.trace_id = trace_id
        self.messages = messages
        self.request_text = request_text
        self.started = started
        self.include_usage = include_usage
        self.created = int(time.time())
        self.model = settings.llm.model
        self.pieces: list[str] = []
        self.usage: Usage | None = None
        self.finish: FinishReason = "stop"

    def _chunk(self, delta: ChunkDelta, finish: FinishReason | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=FINISH_REASONS[finish] if finish else None)
        chunk = ChatCompletionChunk(
            id=f"chatcmpl-{self.trace_id}", created=self.created, model=self.model, choices=[choice]
        )
        return sse_event(chunk.model_dump_json())

    def _take(self, delta: ChatDelta) -> None:
        self.model = delta.model or self.model
        self.usage = delta.usage or self.usage
        self.finish = delta.finish_reason or self.finish
        if delta.text:
            self.pieces.append(delta.text)

    def _final_usage(self) -> Usage:
        return self.usage or Usage(
            prompt_tokens=estimate_prompt_tokens(self.messages),
            completion_tokens=estimate_tokens("".join(self.pieces)),
            estimated=True,
        )

    def _closing(self) -> list[bytes]:
        events = [self._chunk(ChunkDelta(), self.finish)]
        if self.include_usage:
            usage = ChatCompletionChunk(
                id=f"chatcmpl-{self.trace_id}",
                created=self.created,
                model=self.model,
                choices=[],
                usage=CompletionUsage.of(self._final_usage()),
            )
            events.append(sse_event(usage.model_dump_json()))
        return [*events, sse_event("[DONE]")]

    def _report(self) -> None:
        response = ChatResponse(
            text="".join(self.pieces),
            usage=self._final_usage(),
            finish_reason=self.finish,
            model=self.model,
        )
        answer = _as_answer(response, self.trace_id, self.started, self.settings)
        self.tele.answered(answer, endpoint=ENDPOINT, request_text=self.request_text, mode="chat")

    async def events(self, deltas: AsyncIterator[ChatDelta]) -> AsyncIterator[bytes]:
        reported = False
        try:
            yield self._chunk(ChunkDelta(role="assistant", content=""))
            async for delta in deltas:
                self._take(delta)
                if delta.text:
                    yield self._chunk(ChunkDelta(content=delta.text))
            self._report()
            reported = True
            for event in self._closing():
                yield event
        except Exception as exc:
            reported = True
            self._failed(exc)
            yield sse_event(stream_error(exc, self.trace_id))
        finally:
            if not reported:
                self._failed(GeneratorExit())
            await _close(deltas)

    def _failed(self, exc: BaseException) -> None:
        latency = round((time.perf_counter() - self.started) * 1000, 2)
        self.tele.failed(
            exc,
            trace_id=self.trace_id,
            endpoint=ENDPOINT,
            request_text=self.request_text,
            latency_ms=latency,
            mode="chat",
        )


async def _close(source: AsyncIterator[object]) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()
