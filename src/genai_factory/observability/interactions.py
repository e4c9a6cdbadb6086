"""Interaction records: what one request asked, what it got, and what it cost, for later audits.

A record is built from the request and the answer (an ``AssistantAnswer``): the request text and the
answer after redaction, the route, the model, per-stage latency, tokens, cost, the ids of the
retrieved chunks, the safety verdicts and every other field the answer carries (in ``details``, so
fields added to ``AssistantAnswer`` later are kept without a schema change). Failed requests are
recorded too, with their error code. The drift monitor and the retraining jobs read these records;
users' feedback is attached to them by trace id.

Redaction hook: the safety pipeline passes its redactor as ``redact`` (text in, text out); it is
applied to the request and the answer before they are stored. ``store_text=False`` keeps no text.

Erasure: when a session is deleted, its records are kept for accounting but erased
(:func:`erased`): ``deleted_at`` is set, the request and answer texts are blanked, and ``details``
keeps only numbers and flags (no agent inputs, thoughts or observations). Tokens, cost, latency,
route, model, status and the safety verdicts (which hold no text) stay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from genai_factory.exceptions import GenAIFactoryError, SafetyViolation

if TYPE_CHECKING:
    from genai_factory.assistant.answer import AssistantAnswer

Redactor = Callable[[str], str]
InteractionStatus = Literal["ok", "error", "blocked", "cancelled"]

#: Request and answer texts longer than this are cut (the record says so in ``details``).
MAX_TEXT_CHARS = 100_000
#: ``details`` larger than this (as JSON) are replaced by a truncated preview.
MAX_DETAILS_CHARS = 64_000
#: What ``details`` of an erased record keeps: numbers and flags, no text.
ERASED_KEEPS = ("retrieval_scores", "limit_hit", "stop_reason")
#: What an erased record keeps of each agent step.
ERASED_STEP_KEEPS = ("index", "tool", "ok", "automatic", "model_ms", "tool_ms")
#: What an erased record keeps of each step of an orchestrated plan.
ERASED_PLAN_KEEPS = ("index", "specialist", "status", "tokens", "latency_ms")
#: Answer fields stored in their own columns; every other field goes to ``details``.
COLUMN_FIELDS = frozenset(
    {
        "answer",
        "citations",
        "usage",
        "latency_ms",
        "model",
        "trace_id",
        "route",
        "finish_reason",
        "session_id",
        "stages_ms",
        "safety",
    }
)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class InteractionRecord:
    """One request and its outcome (a row of ``interactions``)."""

    trace_id: str
    endpoint: str
    status: InteractionStatus
    request_text: str
    response_text: str = ""
    key_id: str | None = None
    session_id: str | None = None
    mode: str | None = None
    route: str | None = None
    model: str = ""
    finish_reason: str | None = None
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    stages_ms: dict[str, float] = field(default_factory=dict)
    retrieval_ids: list[str] = field(default_factory=list)
    safety: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    #: When the record's session was deleted and its texts erased (``None``: never).
    deleted_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        # The fields as they are (``asdict`` would deep-copy every nested dict and list; the
        # record is frozen and its containers are not changed after it is made).
        return dict(self.__dict__)


def erased_details(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` without text: the scores and flags, each agent step's tool and timing, and
    each plan step's specialist, status and cost."""
    kept = {name: details[name] for name in ERASED_KEEPS if name in details}
    for key, keeps in (("steps", ERASED_STEP_KEEPS), ("plan", ERASED_PLAN_KEEPS)):
        items = details.get(key)
        if isinstance(items, list):
            kept[key] = [
                {name: item[name] for name in keeps if name in item}
                for item in items
                if isinstance(item, dict)
            ]
    return kept


def erased(record: InteractionRecord, when: datetime | None = None) -> InteractionRecord:
    """``record`` with its texts erased and marked deleted (see the module docstring)."""
    return replace(
        record,
        request_text="",
        response_text="",
        details=erased_details(record.details),
        deleted_at=record.deleted_at or when or utc_now(),
    )


@dataclass(frozen=True)
class FeedbackRecord:
    """A user's rating (-1 or 1) of one answer, with an optional comment."""

    trace_id: str
    rating: int
    comment: str | None = None
    key_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True)
class TextPolicy:
    """What of the texts is stored: redacted (``redact``), or nothing (``store_text=False``)."""

    store_text: bool = True
    redact: Redactor | None = None

    def apply(self, text: str) -> str:
        if not self.store_text:
            return ""
        cleaned = self.redact(text) if self.redact is not None else text
        return cleaned[:MAX_TEXT_CHARS]


def _bounded(details: dict[str, Any], *, json_safe: bool = False) -> dict[str, Any]:
    """``details`` as JSON values, or a truncated preview when they are too long; ``json_safe``:
    they hold JSON values already (no round trip needed, only the length is measured)."""
    encoded = json.dumps(details, default=str)
    if len(encoded) <= MAX_DETAILS_CHARS:
        if json_safe:
            return details
        return json.loads(encoded)  # type: ignore[no-any-return]
    return {"truncated": True, "preview": encoded[:MAX_DETAILS_CHARS]}


def record_answer(
    answer: AssistantAnswer,
    *,
    endpoint: str,
    request_text: str,
    policy: TextPolicy,
    key_id: str | None = None,
    mode: str | None = None,
    status: InteractionStatus = "ok",
) -> InteractionRecord:
    """The record of a request that got ``answer`` (``status="cancelled"`` for a cut stream)."""
    dumped = answer.model_dump(mode="json")
    details = {k: v for k, v in dumped.items() if k not in COLUMN_FIELDS}
    # The drift monitor compares retrieval quality over time from these.
    details["retrieval_scores"] = [round(c.score, 4) for c in answer.citations]
    return InteractionRecord(
        trace_id=answer.trace_id,
        endpoint=endpoint,
        status=status,
        request_text=policy.apply(request_text),
        response_text=policy.apply(answer.answer),
        key_id=key_id,
        session_id=answer.session_id,
        mode=mode,
        route=answer.route,
        model=answer.model,
        finish_reason=answer.finish_reason,
        prompt_tokens=answer.usage.prompt_tokens,
        completion_tokens=answer.usage.completion_tokens,
        cost_usd=answer.usage.cost_usd,
        latency_ms=answer.latency_ms,
        stages_ms=dict(answer.stages_ms),
        retrieval_ids=[c.chunk_id for c in answer.citations],
        safety=dumped.get("safety"),
        details=_bounded(details, json_safe=True),
    )


def record_failure(
    exc: BaseException,
    *,
    trace_id: str,
    endpoint: str,
    request_text: str,
    policy: TextPolicy,
    latency_ms: float,
    key_id: str | None = None,
    session_id: str | None = None,
    mode: str | None = None,
) -> InteractionRecord:
    """The record of a request that failed with ``exc``.

    A guard's block is ``blocked``; a cancellation (the client went away) is ``cancelled``.
    """
    status: InteractionStatus = "error"
    code = exc.code if isinstance(exc, GenAIFactoryError) else "internal_error"
    safety = None
    if isinstance(exc, SafetyViolation):
        status, safety = "blocked", {"blocked": True, "reason": exc.reason}
        if exc.guard:  # which guard blocked, so the operations page can count per guard
            safety["guard"] = exc.guard
        if exc.stage:
            safety["stage"] = exc.stage
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
        status, code = "cancelled", "cancelled"
    return InteractionRecord(
        trace_id=trace_id,
        endpoint=endpoint,
        status=status,
        request_text=policy.apply(request_text),
        key_id=key_id,
        session_id=session_id,
        mode=mode,
        error_code=code,
        latency_ms=latency_ms,
        safety=safety,
    )
