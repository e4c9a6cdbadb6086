"""One assistant turn, written once: prepared, answered by one of three middle steps, finished.

* **prepare** (``AssistantService._prepare``): input guards, once → route → history → retrieval →
  sources screened → prompt. The result is a :class:`Turn`.
* **middle**: the model's ``chat`` (``generate``), its ``stream`` (``stream``, and the
  OpenAI-compatible route), the agent, or the orchestrator (a question made of several
  questions, :mod:`~genai_factory.assistant.orchestrator`). Each produces an :class:`Outcome`; none calls another.
* **finish** (:meth:`Turn.finish`): history written, the :class:`AssistantAnswer` built with
  citations, priced usage, per-stage timings and the safety report.

Every mode records the same stage keys: ``input_guards`` and ``output_guards`` when guards are on,
``routing``, then ``retrieval`` and ``llm`` (chat and RAG routes) or ``agent`` (the agent and the
orchestrator).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from genai_factory.agents.steps import AgentResult, AgentStep, StopReason
from genai_factory.assistant.answer import AssistantAnswer, PlanStepResult, Route
from genai_factory.assistant.planner import Plan
from genai_factory.llm.collector import DeltaCollector
from genai_factory.llm.tokens import PriceLike, priced
from genai_factory.messages import (
    ChatDelta,
    ChatOptions,
    ChatResponse,
    FinishReason,
    Message,
    ScoredChunk,
    Usage,
)
from genai_factory.observability.tracing import current_trace_id
from genai_factory.rag.prompting import citations_for
from genai_factory.safety.gate import RequestSafety


def ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 2)


@dataclass
class Outcome:
    """What the middle step of a turn produced (the text after the output guards)."""

    text: str
    usage: Usage
    model: str
    finish_reason: FinishReason = "stop"
    steps: list[AgentStep] = field(default_factory=list)
    limit_hit: bool = False
    stop_reason: StopReason | None = None
    plan: list[PlanStepResult] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)

    @classmethod
    def of_response(cls, response: ChatResponse, text: str) -> Outcome:
        return cls(text, response.usage, response.model, response.finish_reason)

    @classmethod
    def of_agent(cls, result: AgentResult, text: str) -> Outcome:
        return cls(
            text,
            result.usage,
            result.model,
            steps=result.steps,
            limit_hit=result.limit_hit,
            stop_reason=result.stop_reason,
        )


@dataclass
class Turn:
    """One prepared turn (see the module docstring)."""

    query: str
    safety: RequestSafety
    session_id: str | None = None
    route: Route = "chat"
    hits: list[ScoredChunk] = field(default_factory=list)
    #: The plan of a question made of several questions (the orchestrator answers it).
    plan: Plan | None = None
    messages: list[Message] = field(default_factory=list)
    options: ChatOptions = field(default_factory=ChatOptions)
    #: Whether the question and answer are appended to the session history.
    remember: bool = True
    trace_id: str = field(default_factory=lambda: current_trace_id() or uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def guarded(self) -> bool:
        return self.safety.pipeline is not None

    @contextmanager
    def timed(self, stage: str, *, when: bool = True) -> Iterator[None]:
        """Time the block into ``stages[stage]`` (nothing is recorded when ``when`` is false)."""
        mark = time.perf_counter()
        yield
        if when:
            self.stages[stage] = round(self.stages.get(stage, 0.0) + ms_since(mark), 2)

    def checked(self, response: ChatResponse) -> Outcome:
        """A complete model answer after the output guards."""
        with self.timed("output_guards", when=self.guarded):
            text = self.safety.answer(response.text, self.route, self.hits)
        return Outcome.of_response(response, text)

    async def guarded_stream(
        self, deltas: AsyncIterator[ChatDelta], collector: DeltaCollector
    ) -> AsyncGenerator[str, None]:
        """The text of ``deltas`` after the output guards, as the caller may see it (the first
        piece as soon as the model has started, even when the guards hold its text back); the
        model's time goes to ``llm`` and the guards' time to ``output_guards``."""
        model, total = _Clock(), _Clock()
        guarded = total.timed(self.safety.stream(model.timed(deltas), self.route, self.hits))
        first = True
        try:
            async for delta in guarded:
                text = collector.add(delta)
                if text or first:  # the first piece, even empty: the model has started
                    yield self.safety.shown(text)
                first = False
        finally:
            await guarded.aclose()
            self.stages["llm"] = round(model.seconds * 1000, 2)
            if self.guarded:
                self.stages["output_guards"] = round((total.seconds - model.seconds) * 1000, 2)

    def finish(
        self, outcome: Outcome, *, prices: Mapping[str, PriceLike], excerpt_chars: int
    ) -> AssistantAnswer:
        """The answer of this turn (history is written by the service before)."""
        return AssistantAnswer(
            answer=self.safety.shown(outcome.text).strip(),
            citations=citations_for(outcome.text, self.hits, excerpt_chars=excerpt_chars),
            usage=priced(outcome.usage, outcome.model, prices),
            latency_ms=ms_since(self.started),
            model=outcome.model,
            trace_id=self.trace_id,
            route=self.route,
            finish_reason=outcome.finish_reason,
            session_id=self.session_id,
            stages_ms=dict(self.stages),
            steps=outcome.steps,
            limit_hit=outcome.limit_hit,
            stop_reason=outcome.stop_reason,
            plan=outcome.plan,
            sql=outcome.sql,
            safety=self.safety.summary(),
        )


@dataclass
class _Clock:
    """Seconds spent waiting for the items of a stream."""

    seconds: float = 0.0

    async def timed(self, items: AsyncIterator[ChatDelta]) -> AsyncGenerator[ChatDelta, None]:
        try:
            while True:
                mark = time.perf_counter()
                item = await anext(items, None)
                self.seconds += time.perf_counter() - mark
                if item is None:
                    return
                yield item
        finally:
            await _close(items)


async def _close(source: object) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()
