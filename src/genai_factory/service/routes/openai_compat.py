"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client works against it (``base_url=http://HOST:PORT/v1``, ``api_key=<gateway key>``).
A completion runs the configured model chain (retry, breaker, fallbacks) behind the gateway, exactly
like ``/v1/assistant/generate``: its tokens count against the key's limits and its cost against its
budget, and it is written to the interaction log. By default it is the model alone, without retrieval or the
assistant's system prompt, answered through the same assistant turn as ``/v1/assistant/generate``
(:mod:`genai_factory.assistant.turn`): the ``chat`` policy's guards screen every user message
(``tool`` messages as indirect input) and the answer, streamed or not. With the ``mode`` extension
(``extra_body={"mode": "rag"}`` in the OpenAI client) it runs an assistant turn instead: the last
user message is the question, earlier turns its history, and the response carries ``citations``. ``model`` must name a
configured model (the primary or a fallback); the chain answers either way, and the response's
``model`` says which model did. The completion id is ``chatcmpl-<trace id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from genai_factory.assistant.answer import (
    AssistantAnswer,
    StreamDelta,
    StreamEvent,
    StreamStart,
)
from genai_factory.assistant.assembly import Components
from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.messages import ChatOptions, FinishReason, Message
from genai_factory.observability.assembly import Telemetry
from genai_factory.service.deps import check_reveal, components, ready_components, telemetry
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
from genai_factory.service.sse import observed_sse, primed, sse_event, sse_response

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


#: The request body as FastAPI documents a body parameter (the route reads the body itself).
BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}
        },
        "required": True,
    }
}
VALIDATION_DOC: dict[str, Any] = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}
_REQUEST = TypeAdapter(ChatCompletionRequest)


def document_request_schemas(app: FastAPI) -> None:
    """Add ``ChatCompletionRequest`` and the models it uses to ``app``'s OpenAPI components, where
    ``BODY_DOC`` points (FastAPI adds only the models of parameters it validates itself)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in _request_schemas().items():
            schemas.setdefault(name, definition)
        spec["components"]["schemas"] = dict(sorted(schemas.items()))
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _request_schemas() -> dict[str, Any]:
    """The component schemas FastAPI writes for a ``ChatCompletionRequest`` body parameter."""
    probe = FastAPI()

    @probe.post("/")
    async def _probe(body: ChatCompletionRequest) -> None:  # pragma: no cover - never called
        return None

    schemas: dict[str, Any] = probe.openapi()["components"]["schemas"]
    return schemas


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters aside (FastAPI's rule)."""
    if content_type is None:
        return False
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def read_request(request: Request) -> ChatCompletionRequest:
    """The request body, validated straight from its JSON bytes.

    A body that does not validate is read again the way FastAPI reads a body parameter (decoded,
    then validated), so the errors, and the 422 built from them, are the ones FastAPI reports.
    """
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    data: Any = raw  # not JSON: FastAPI validates the bytes, and they fail
    if _is_json(request.headers.get("content-type")):
        try:
            return ChatCompletionRequest.model_validate_json(raw)
        except ValidationError:
            pass
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ],
                body=exc.doc,
            ) from exc
        except (ValueError, RecursionError) as exc:  # not UTF-8 (or -16, -32), or nested too deep
            raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        return _REQUEST.validate_python(data, from_attributes=True)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None


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


def _question(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    """An assistant turn's question (the last user message) and its history (earlier user and
    assistant messages)."""
    position = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), -1)
    if position < 0:
        raise InvalidRequestError("an assistant turn (mode) needs a user message")
    earlier = [m for m in messages[:position] if m.role in ("user", "assistant")]
    return messages[position].content, earlier


def _events(
    parts: Components, body: ChatCompletionRequest, messages: list[Message], options: ChatOptions
) -> AsyncIterator[StreamEvent]:
    assistant = parts.assistant
    if body.mode is None:
        return assistant.stream_completion(messages, options, reveal_pii=body.reveal_pii)
    query, history = _question(messages)
    return assistant.stream(
        query,
        mode=body.mode,
        max_tokens=options.max_tokens,
        reveal_pii=body.reveal_pii,
        history=history,
    )


async def _answer(
    parts: Components, body: ChatCompletionRequest, messages: list[Message], options: ChatOptions
) -> AssistantAnswer:
    assistant = parts.assistant
    if body.mode is None:
        return await assistant.complete(messages, options, reveal_pii=body.reveal_pii)
    query, history = _question(messages)
    return await assistant.generate(
        query,
        mode=body.mode,
        max_tokens=options.max_tokens,
        reveal_pii=body.reveal_pii,
        history=history,
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}, 422: VALIDATION_DOC},
    openapi_extra=BODY_DOC,
)
async def chat_completions(request: Request, parts: Parts, tele: Observed) -> Response:
    """An OpenAI chat completion, streamed (``"stream": true``, SSE) or not.

    The body is validated from its bytes (``read_request``) and the completion is serialised here,
    once: FastAPI would otherwise decode the body to a dict before validating it, and dump the
    completion, validate the dump against ``ChatCompletion`` again and encode it
    (``openapi_extra`` and ``response_model`` still document both).
    """
    body = await read_request(request)
    settings = parts.settings
    if body.model not in served_models(settings):
        raise NotFoundError(f"model {body.model!r} is not served here; GET /v1/models lists them")
    if body.mode is not None and (gateway := getattr(request.app.state, "gateway", None)):
        await gateway.admit_pending()  # before the retrieval or routing a mode may do
    messages = [m.to_message() for m in body.messages]
    options = _options(body, settings)
    trace_id: str = request.state.trace_id
    text = _request_text(messages)
    mode = body.mode or "chat"
    async with tele.observing(ENDPOINT, text, trace_id=trace_id, mode=mode) as seen:
        if body.reveal_pii:
            await check_reveal(request, parts)
        if body.stream:
            events = await primed(_events(parts, body, messages, options))
        else:
            seen.answer = await _answer(parts, body, messages, options)
    if body.stream:
        chunks = _Chunks(trace_id, settings.llm.model, body.include_usage())
        return sse_response(observed_sse(events, chunks.render, seen.report))
    answer = seen.answer
    assert answer is not None
    completion = ChatCompletion(
        id=f"chatcmpl-{trace_id}",
        created=int(time.time()),
        model=answer.model,
        choices=[
            Choice(
                message=AssistantMessageOut(content=answer.answer),
                finish_reason=FINISH_REASONS[answer.finish_reason],
            )
        ],
        usage=CompletionUsage.of(answer.usage),
        citations=answer.citations,
    )
    return Response(completion.model_dump_json(), media_type="application/json")


class _Chunks:
    """Renders a turn's events as OpenAI chunks: the role, the content pieces, then the finish
    reason, the usage (when asked for) and ``[DONE]``."""

    def __init__(self, trace_id: str, model: str, include_usage: bool) -> None:
        self.id = f"chatcmpl-{trace_id}"
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        # A content chunk differs from the next one only by its text: render it once, with an
        # empty text, and splice each text in, JSON-encoded, between the two halves.
        template = self._chunk(ChunkDelta(content=""))
        head, _, tail = template.partition(b'"content":""')
        self._head, self._tail = head + b'"content":', tail

    def _content(self, text: str) -> bytes:
        """The chunk of one content piece, as ``_chunk(ChunkDelta(content=text))`` renders it."""
        try:
            encoded = json.dumps(text, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: leave it to pydantic
            return self._chunk(ChunkDelta(content=text))
        return self._head + encoded + self._tail

    def _chunk(self, delta: ChunkDelta, finish: FinishReason | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=FINISH_REASONS[finish] if finish else None)
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[choice]
        )
        return sse_event(chunk.model_dump_json())

    def render(self, event: StreamEvent) -> Iterable[bytes]:
        if isinstance(event, StreamStart):
            return (self._chunk(ChunkDelta(role="assistant", content="")),)
        if isinstance(event, StreamDelta):
            return (self._content(event.text),)
        answer = event.answer
        self.model = answer.model or self.model
        closing = [self._chunk(ChunkDelta(), answer.finish_reason)]
        if self.include_usage:
            usage = ChatCompletionChunk(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=[],
                usage=CompletionUsage.of(answer.usage),
            )
            closing.append(sse_event(usage.model_dump_json()))
        return [*closing, sse_event("[DONE]")]
