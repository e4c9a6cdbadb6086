"""Synthetic traffic for the interaction log: what the drift monitor's tests and demos replay.

:func:`seed_traffic` writes real rows through :class:`SqlInteractionLog` (the same API the service
uses), spread over a time window, with chosen rates of guard blocks, refusals, errors and feedback
and a retrieval score per answered request (in ``details.retrieval_scores``). Two question pools
are provided: :data:`PRODUCT_QUESTIONS`, about what the bundled user guide covers, and
:data:`OFF_TOPIC_QUESTIONS`, about subjects the index lacks — replaying the second after the first
is a topic shift the drift monitor must flag.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from genai_factory.observability.interaction_store import SqlInteractionLog
from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord

_PRODUCT_SUBJECTS = (
    "an API key",
    "a rate limit",
    "a monthly budget",
    "the knowledge index",
    "an index version",
    "the PII redaction guard",
    "the prompt injection guard",
    "the SQL agent",
    "the OpenAI-compatible endpoint",
    "the interaction log",
    "session memory",
    "the circuit breaker",
)
_PRODUCT_FORMS = (
    "How do I configure {}?",
    "What happens when {} is exceeded or fails?",
    "Can you explain how {} works in GenAI Factory?",
    "Where are the settings for {}?",
    "How do I roll back {}?",
    "Is {} enabled by default?",
)
_OFF_TOPIC_SUBJECTS = (
    "sourdough bread",
    "the offside rule in football",
    "growing tomatoes on a balcony",
    "the French revolution",
    "training for a marathon",
    "knitting a scarf",
    "the rings of Saturn",
    "making espresso at home",
    "learning to play the ukulele",
    "the migration of monarch butterflies",
)
_OFF_TOPIC_FORMS = (
    "What is the best way to start with {}?",
    "Tell me everything about {}.",
    "Why do people care so much about {}?",
    "Give me three tips for {}.",
    "What is the history of {}?",
)

#: Questions about what the bundled user guide covers.
PRODUCT_QUESTIONS: tuple[str, ...] = tuple(
    f.format(s) for s in _PRODUCT_SUBJECTS for f in _PRODUCT_FORMS
)
#: Questions about subjects the bundled index does not hold.
OFF_TOPIC_QUESTIONS: tuple[str, ...] = tuple(
    f.format(s) for s in _OFF_TOPIC_SUBJECTS for f in _OFF_TOPIC_FORMS
)
REFUSAL_TEXT = "I do not know: the sources do not cover this."


@dataclass(frozen=True)
class TrafficProfile:
    """How one stretch of traffic behaves. Rates are probabilities per request.

    ``refusal_rate`` and the feedback rates apply to answered requests; ``score_mean`` /
    ``score_sd``: the best retrieval score of an answered request (clipped to [0, 1]).
    """

    questions: Sequence[str] = PRODUCT_QUESTIONS
    block_rate: float = 0.02
    error_rate: float = 0.01
    refusal_rate: float = 0.05
    positive_feedback_rate: float = 0.2
    negative_feedback_rate: float = 0.03
    score_mean: float = 0.65
    score_sd: float = 0.08


def _answered(
    rng: random.Random, profile: TrafficProfile, question: str, stamp: datetime
) -> InteractionRecord:
    refused = rng.random() < profile.refusal_rate
    top = min(1.0, max(0.0, rng.gauss(profile.score_mean, profile.score_sd)))
    scores = [round(top - 0.05 * i, 4) for i in range(4)]
    return InteractionRecord(
        trace_id=uuid.uuid4().hex,
        endpoint="/v1/ask",
        status="ok",
        request_text=question,
        response_text=REFUSAL_TEXT if refused else f"Here is how it works: {question.lower()}",
        mode="auto",
        route="rag",
        model="synthetic",
        finish_reason="stop",
        prompt_tokens=len(question.split()) + 200,
        completion_tokens=40,
        latency_ms=rng.uniform(200, 900),
        retrieval_ids=[f"chunk-{rng.randrange(500)}" for _ in scores],
        details={"retrieval_scores": scores},
        created_at=stamp,
    )


def _failed(status: str, question: str, stamp: datetime) -> InteractionRecord:
    blocked = status == "blocked"
    return InteractionRecord(
        trace_id=uuid.uuid4().hex,
        endpoint="/v1/ask",
        status="blocked" if blocked else "error",
        request_text=question,
        model="synthetic",
        error_code="safety_violation" if blocked else "upstream_unavailable",
        safety={"blocked": True, "reason": "prompt injection", "guard": "injection"}
        if blocked
        else None,
        created_at=stamp,
    )


async def seed_traffic(
    log: SqlInteractionLog,
    *,
    start: datetime,
    end: datetime,
    count: int,
    profile: TrafficProfile | None = None,
    seed: int = 0,
) -> list[InteractionRecord]:
    """Write ``count`` interactions spread evenly over ``[start, end)`` (naive UTC) and their
    feedback; returns the records written."""
    profile = profile or TrafficProfile()
    rng = random.Random(seed)  # noqa: S311  seeded synthetic traffic for tests, not a secret
    step = (end - start) / max(count, 1)
    records: list[InteractionRecord] = []
    feedback: list[FeedbackRecord] = []
    for i in range(count):
        stamp = start + step * i
        question = rng.choice(list(profile.questions))
        draw = rng.random()
        if draw < profile.block_rate:
            records.append(_failed("blocked", question, stamp))
            continue
        if draw < profile.block_rate + profile.error_rate:
            records.append(_failed("error", question, stamp))
            continue
        record = _answered(rng, profile, question, stamp)
        records.append(record)
        vote = rng.random()
        if vote < profile.positive_feedback_rate:
            feedback.append(FeedbackRecord(record.trace_id, 1, created_at=stamp))
        elif vote < profile.positive_feedback_rate + profile.negative_feedback_rate:
            feedback.append(FeedbackRecord(record.trace_id, -1, created_at=stamp))
    await log.record(records)
    for rating in feedback:
        await log.add_feedback(rating)
    return records
