"""``POST /v1/assistant/generate``: ask the assistant one question (``"stream": true``: as SSE)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from genai_factory.assistant.answer import AssistantAnswer, StreamEnd, StreamEvent
from genai_factory.assistant.assembly import Components
from genai_factory.gateway.context import bind_trace_id
from genai_factory.observability.assembly import Telemetry, request_key_id
from genai_factory.service.deps import check_reveal, ready_components, telemetry
from genai_factory.service.schemas import GenerateRequest
from genai_factory.service.sse import observed_sse, primed, sse_event, sse_response

router = APIRouter(prefix="/v1/assistant", tags=["assistant"])

ENDPOINT = "generate"
SSE_DOC = {
    "description": 'With `"stream": true`: server-sent events `start`, `delta`..., then `end` '
    "(the whole answer) or `error`.",
    "content": {"text/event-stream": {}},
}


def _check_length(body: GenerateRequest, limit: int) -> None:
    if len(body.query) > limit:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "query"),
                    "msg": f"query is {len(body.query)} characters; the limit is {limit}",
                    "type": "string_too_long",
                }
            ]
        )


async def _claim_session(parts: Components, session_id: str | None) -> None:
    """Create the session for the request's key, or check that the key owns it (403)."""
    history = parts.assistant.history
    if session_id is not None and history is not None:
        await history.claim(session_id, request_key_id())


def _render(event: StreamEvent) -> Iterable[bytes]:
    if isinstance(event, StreamEnd):
        return (sse_event(event.answer.model_dump_json(), "end"),)
    return (sse_event(event.model_dump_json(exclude={"event"}), event.event),)


@router.post("/generate", response_model=AssistantAnswer, responses={200: SSE_DOC})
async def generate(
    body: GenerateRequest,
    request: Request,
    parts: Annotated[Components, Depends(ready_components)],
    tele: Annotated[Telemetry, Depends(telemetry)],
) -> AssistantAnswer | StreamingResponse:
    """Answer a question with citations, usage, cost, latency, the answering model and a trace id.

    Needs an API key when auth is on; the model call is charged to the key's tokens per minute and
    budget (worst case reserved before, real cost settled after; see docs/gateway.md). A session
    belongs to the key that created it: another key gets 403.
    """
    _check_length(body, parts.settings.service.max_query_chars)
    trace_id: str = request.state.trace_id
    async with tele.observing(
        ENDPOINT, body.query, trace_id=trace_id, mode=body.mode, session_id=body.session_id
    ) as seen:
        if body.reveal_pii:
            await check_reveal(request, parts)
        await _claim_session(parts, body.session_id)
        if body.stream:
            ready = await primed(
                parts.assistant.stream(
                    body.query,
                    mode=body.mode,
                    session_id=body.session_id,
                    max_tokens=body.max_tokens,
                    reveal_pii=body.reveal_pii,
                )
            )
        else:
            seen.answer = await parts.assistant.generate(
                body.query,
                mode=body.mode,
                session_id=body.session_id,
                max_tokens=body.max_tokens,
                reveal_pii=body.reveal_pii,
            )
    if body.stream:
        return sse_response(observed_sse(ready, _render, seen.report, error_event="error"))
    assert seen.answer is not None
    bind_trace_id(seen.answer.trace_id)
    return seen.answer
