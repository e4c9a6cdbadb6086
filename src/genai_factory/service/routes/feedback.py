"""``POST /v1/feedback``: a user's rating of one answer, stored with its interaction record."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from genai_factory.exceptions import NotFoundError, PermissionDenied
from genai_factory.observability.assembly import Telemetry, request_key_id
from genai_factory.observability.interactions import FeedbackRecord
from genai_factory.service.deps import telemetry

router = APIRouter(prefix="/v1", tags=["feedback"])

MAX_COMMENT_CHARS = 2000


class FeedbackRequest(BaseModel):
    """A rating of the answer with this ``trace_id``: 1 (good) or -1 (bad), and a comment."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(min_length=1, max_length=64)
    rating: Literal[-1, 1]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class FeedbackReceipt(BaseModel):
    id: int
    trace_id: str
    rating: int


@router.post("/feedback", status_code=201)
async def feedback(
    body: FeedbackRequest, tele: Annotated[Telemetry, Depends(telemetry)]
) -> FeedbackReceipt:
    """Rate an answer. 404 for an unknown trace id, 403 for an answer given to another key."""
    record = await tele.interactions.find(body.trace_id)
    if record is None:
        raise NotFoundError(f"no answer with trace id {body.trace_id!r}")
    key_id = request_key_id()
    if key_id is not None and record.key_id != key_id:
        raise PermissionDenied(f"the answer {body.trace_id!r} was given to another API key")
    stored = FeedbackRecord(
        trace_id=body.trace_id, rating=body.rating, comment=body.comment or None, key_id=key_id
    )
    feedback_id = await tele.interactions.add_feedback(stored)
    tele.metrics.feedback.labels("up" if body.rating > 0 else "down").inc()
    return FeedbackReceipt(id=feedback_id, trace_id=body.trace_id, rating=body.rating)
