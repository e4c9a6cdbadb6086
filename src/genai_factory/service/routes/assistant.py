"""``POST /v1/assistant/generate``: ask the assistant one question."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError

from genai_factory.assistant.assembly import Components
from genai_factory.assistant.service import AssistantAnswer
from genai_factory.gateway.context import bind_trace_id
from genai_factory.service.deps import ready_components
from genai_factory.service.schemas import GenerateRequest

router = APIRouter(prefix="/v1/assistant", tags=["assistant"])


@router.post("/generate")
async def generate(
    body: GenerateRequest, parts: Annotated[Components, Depends(ready_components)]
) -> AssistantAnswer:
    """Answer a question with citations, usage, cost, latency, the answering model and a trace id.

    Needs an API key when auth is on; the model call is charged to the key's tokens per minute and
    budget (worst case reserved before, real cost settled after; see docs/gateway.md).
    """
    limit = parts.settings.service.max_query_chars
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
    answer = await parts.assistant.generate(
        body.query, mode=body.mode, session_id=body.session_id, max_tokens=body.max_tokens
    )
    bind_trace_id(answer.trace_id)
    return answer
