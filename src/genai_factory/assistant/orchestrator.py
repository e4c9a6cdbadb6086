"""``Orchestrator``: a question made of several questions, answered step by step by specialists.

The supervisor is deterministic. :meth:`Orchestrator.plan` splits the question and gives each step
a specialist (:mod:`~genai_factory.assistant.planner`, no model call); :meth:`Orchestrator.run`
runs the steps one after another, in the plan's order:

* each step runs within its specialist's limits (:mod:`~genai_factory.assistant.specialists`):
  its own ``timeout_s`` (enforced here as well, :data:`GRACE_S` after the specialist's own limit,
  and never past the plan's ``timeout_s``), its own token budget and, for the agents, step count;
* the result of each step passes the request's context guards before a later step's model reads
  it (``Step 1 (sql): There are 3 customers from the US.``); a flagged result is withheld;
* every step is a span (``orchestrator_step``, with its index, specialist and status) and a
  :class:`~genai_factory.assistant.answer.PlanStepResult` of the answer, so the interaction log
  records it;
* a step that hits a limit or whose backend fails does not stop the plan: its sentence says so and
  the answer is flagged ``limit_hit``. Cancelling the request cancels the step in flight (its model
  call or tool wait) and no later step starts.

The answer is composed without a model call: one sentence per step (the first sentence of the
step's answer, keeping its citation), the citations renumbered over the sources the documents steps
cited, then one ``SQL:`` line per statement an SQL step ran without error (as the model wrote it).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from genai_factory.agents.steps import AgentStep, StopReason
from genai_factory.assistant.answer import PlanStepResult, StepStatus
from genai_factory.assistant.planner import Plan, PlannedStep, Specialist, make_plan
from genai_factory.assistant.routing import DataTerms
from genai_factory.assistant.specialists import (
    STEP_ROUTE,
    SpecialistRunner,
    StepInput,
    StepOutput,
)
from genai_factory.exceptions import ProviderError, ToolError
from genai_factory.messages import ScoredChunk, Usage
from genai_factory.observability.tracing import stage_span
from genai_factory.rag.prompting import cited_numbers
from genai_factory.safety.gate import RequestSafety

log = structlog.get_logger(__name__)

#: Seconds the orchestrator waits beyond a specialist's own time limit (which returns its best
#: answer) before it cuts the step itself.
GRACE_S = 0.5
#: The longest sentence a step contributes to the answer.
SENTENCE_CHARS = 400
_STATUS: dict[StopReason, StepStatus] = {
    "answer": "ok",
    "max_steps": "max_steps",
    "timeout": "timeout",
    "token_budget": "token_budget",
}
_LIMIT_OF: dict[StepStatus, StopReason] = {
    "max_steps": "max_steps",
    "timeout": "timeout",
    "token_budget": "token_budget",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])")
_CITATION = re.compile(r"\s*\[(\d{1,2})\]")


@dataclass
class Orchestrated:
    """What a plan produced: the composed answer and everything the response and the log show."""

    text: str
    results: list[PlanStepResult]
    usage: Usage
    model: str
    agent_steps: list[AgentStep]
    #: The sources cited by the answer, numbered ``[1]``... in this order.
    hits: list[ScoredChunk]
    sql: list[str]
    limit_hit: bool
    stop_reason: StopReason


@dataclass
class _Done:
    """A finished step."""

    planned: PlannedStep
    status: StepStatus
    output: StepOutput
    latency_ms: float

    def result(self, sources: list[str]) -> PlanStepResult:
        """The record of this step (``sources``: the chunk ids its sentence cites)."""
        return PlanStepResult(
            index=self.planned.index,
            question=self.planned.question,
            specialist=self.planned.specialist,
            status=self.status,
            answer=self.output.answer,
            sql=list(self.output.sql),
            sources=sources,
            features=list(self.planned.features),
            tokens=self.output.usage.total_tokens,
            latency_ms=self.latency_ms,
        )


@dataclass
class _Run:
    safety: RequestSafety
    trace_id: str
    max_tokens: int
    deadline: float
    done: list[_Done] = field(default_factory=list)
    context: list[str] = field(default_factory=list)


class Orchestrator:
    """Plans and runs multi-step questions over ``specialists`` (see the module docstring).

    Args:
        specialists: the specialists available, by name; a plan only uses these.
        max_plan_steps: steps beyond this are skipped (and reported).
        timeout_s: the whole plan's wall-clock limit.
    """

    def __init__(
        self,
        specialists: Mapping[Specialist, SpecialistRunner],
        *,
        max_plan_steps: int = 4,
        timeout_s: float = 180.0,
    ) -> None:
        if not specialists:
            raise ValueError("the orchestrator needs at least one specialist")
        self.specialists = dict(specialists)
        self.max_plan_steps = max_plan_steps
        self.timeout_s = timeout_s

    def plan(self, question: str, terms: DataTerms | None) -> Plan:
        """The steps of ``question`` over the available specialists."""
        return make_plan(
            question, terms, available=list(self.specialists), max_steps=self.max_plan_steps
        )

    async def run(
        self,
        plan: Plan,
        *,
        safety: RequestSafety,
        trace_id: str,
        max_tokens: int = 160,
    ) -> Orchestrated:
        """Run ``plan``'s steps in order; limits and backend failures of a step never raise."""
        loop = asyncio.get_running_loop()
        run = _Run(safety, trace_id, max_tokens, loop.time() + self.timeout_s)
        for planned in plan.steps:
            remaining = run.deadline - loop.time()
            if remaining <= 0:
                text = "Not started: the plan ran out of time."
                run.done.append(
                    _Done(planned, "skipped", StepOutput(text, stop_reason="timeout"), 0)
                )
                continue
            await self._step(run, planned, remaining)
        for extra in plan.overflow:
            text = f"Not answered: a plan has at most {self.max_plan_steps} steps."
            run.done.append(_Done(extra, "skipped", StepOutput(text, stop_reason="max_steps"), 0))
        return compose(run.done)

    async def _step(self, run: _Run, planned: PlannedStep, remaining: float) -> None:
        specialist = self.specialists[planned.specialist]
        limit = min(specialist.limits.timeout_s + GRACE_S, remaining)
        step_input = StepInput(
            planned.question, run.safety, run.trace_id, run.max_tokens, list(run.context)
        )
        mark = time.perf_counter()
        attributes = {
            "genai.step.index": planned.index,
            "genai.step.specialist": planned.specialist,
        }
        with stage_span("orchestrator_step", **attributes) as span:
            try:
                async with asyncio.timeout(limit):
                    output = await specialist.run(step_input)
                status = _STATUS[output.stop_reason]
            except TimeoutError:
                output = StepOutput(
                    f"This step did not finish within {limit:g} s.", stop_reason="timeout"
                )
                status = "timeout"
            except (ProviderError, ToolError) as exc:
                output = StepOutput(f"This step failed: {exc.message}")
                status = "failed"
            output.answer = run.safety.screen_text(
                f"step-{planned.index + 1}", output.answer, STEP_ROUTE
            )
            if span is not None:
                span.set_attribute("genai.step.status", status)
        latency = round((time.perf_counter() - mark) * 1000, 2)
        log.info(
            "orchestrator_step",
            trace_id=run.trace_id,
            step=planned.index,
            specialist=planned.specialist,
            status=status,
            latency_ms=latency,
        )
        run.done.append(_Done(planned, status, output, latency))
        run.context.append(
            f"Step {planned.index + 1} ({planned.specialist}): {_one_line(output.answer)}"
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` on one line, ending with a full stop (or ``?``/``!``)."""
    flat = _one_line(text)
    sentence = _SENTENCE_END.split(flat, maxsplit=1)[0] if flat else ""
    if len(sentence) > SENTENCE_CHARS:
        sentence = sentence[: SENTENCE_CHARS - 1].rstrip() + "…"
    if sentence and sentence[-1] not in ".?!…":
        sentence += "."
    return sentence


def cited_sentence(
    answer: str, own_hits: Sequence[ScoredChunk], cited_hits: list[ScoredChunk]
) -> tuple[str, list[str]]:
    """The first sentence of a documents step's ``answer`` with its citations renumbered over
    ``cited_hits`` (extended with the sources it cites); also the chunk ids it cites. A citation the
    answer makes later than its first sentence moves to the end of that sentence."""
    sentence = first_sentence(answer)
    numbers = sorted(cited_numbers(answer, len(own_hits)))
    if numbers and not cited_numbers(sentence, len(own_hits)):
        markers = "".join(f"[{n}]" for n in numbers)
        sentence = f"{sentence[:-1]} {markers}{sentence[-1]}"
    mapping: dict[int, int] = {}
    for number in sorted(cited_numbers(sentence, len(own_hits))):
        cited_hits.append(own_hits[number - 1])
        mapping[number] = len(cited_hits)

    def renumber(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f" [{mapping[number]}]" if number in mapping else ""

    text = _CITATION.sub(renumber, sentence).strip()
    return text, [own_hits[n - 1].chunk.id for n in mapping]


def compose(done: Sequence[_Done]) -> Orchestrated:
    """The answer of the finished steps (see the module docstring)."""
    sentences: list[str] = []
    results: list[PlanStepResult] = []
    cited_hits: list[ScoredChunk] = []
    sql: list[str] = []
    usage, model = Usage(), ""
    agent_steps: list[AgentStep] = []
    for step in done:
        output = step.output
        sentence, sources = cited_sentence(output.answer, output.hits, cited_hits)
        sentences.append(sentence)
        sql += [statement for statement in output.sql if statement not in sql]
        usage = usage + output.usage
        model = output.model or model
        agent_steps += [
            s.model_copy(update={"index": len(agent_steps) + i})
            for i, s in enumerate(output.agent_steps)
        ]
        results.append(step.result(sources))
    text = " ".join(s for s in sentences if s)
    if sql:
        text += "\n" + "\n".join(f"SQL: {statement}" for statement in sql)
    limited = [step for step in done if step.status in _LIMIT_OF or step.status == "skipped"]
    stop = _stop_reason(limited[0]) if limited else "answer"
    return Orchestrated(
        text=text,
        results=results,
        usage=usage,
        model=model,
        agent_steps=agent_steps,
        hits=cited_hits,
        sql=sql,
        limit_hit=bool(limited),
        stop_reason=stop,
    )


def _stop_reason(step: _Done) -> StopReason:
    """The limit that cut ``step`` (a skipped step: the plan's time or step limit)."""
    return _LIMIT_OF.get(step.status, step.output.stop_reason)
