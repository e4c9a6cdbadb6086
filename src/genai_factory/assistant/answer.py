"""What the assistant returns: ``AssistantAnswer``, and the events of a streamed answer.

A stream is one :class:`StreamStart` (trace id, route, the retrieved sources, none marked cited
yet), then :class:`StreamDelta` pieces of the answer as the model writes them, then one
:class:`StreamEnd` holding the complete :class:`AssistantAnswer` (citations marked, usage, cost,
latency, stages, safety report): the same answer ``generate`` returns for the same question.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from genai_factory.agents.steps import AgentStep, StopReason
from genai_factory.messages import Citation, FinishReason, Usage
from genai_factory.safety.pipeline import SafetyReport

Mode = Literal["auto", "chat", "rag", "agent"]
Route = Literal["chat", "rag", "agent"]
#: How a step of an orchestrated plan ended: answered, cut by one of its limits, failed, skipped.
StepStatus = Literal["ok", "max_steps", "timeout", "token_budget", "failed", "skipped"]


class PlanStepResult(BaseModel):
    """One step of an orchestrated answer: its question, specialist, outcome and cost.

    ``answer`` is the step's result after the context guards (what later steps were given);
    ``sql`` the statements the model chose that ran without error; ``sources`` the chunk ids it
    cited.
    """

    index: int
    question: str
    specialist: str
    status: StepStatus
    answer: str = ""
    sql: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    tokens: int = 0
    latency_ms: float = 0.0


class AssistantAnswer(BaseModel):
    """One answer of the assistant, as returned by the API and by ``genai-factory ask --json``."""

    answer: str
    citations: list[Citation] = Field(default_factory=list)
    usage: Usage
    latency_ms: float
    model: str
    trace_id: str
    route: Route
    finish_reason: FinishReason = "stop"
    session_id: str | None = None
    stages_ms: dict[str, float] = Field(default_factory=dict)
    #: The agent's steps (tool, input, observation excerpt, timing) when the agent route ran.
    steps: list[AgentStep] = Field(default_factory=list)
    #: True when the agent stopped at a limit (``stop_reason``) and answered with its best effort.
    limit_hit: bool = False
    stop_reason: StopReason | None = None
    #: The steps of an orchestrated answer (a question made of several questions; else empty).
    plan: list[PlanStepResult] = Field(default_factory=list)
    #: The SQL statements the SQL steps ran without error, as the model wrote them (orchestrated
    #: answers; the loop's own schema reads are left out).
    sql: list[str] = Field(default_factory=list)
    #: What the guards did: input verdicts, dropped sources, output verdicts (``None``: guards off).
    safety: SafetyReport | None = None


class StreamStart(BaseModel):
    event: Literal["start"] = "start"
    trace_id: str
    route: str
    session_id: str | None = None
    citations: list[Citation] = Field(default_factory=list)


class StreamDelta(BaseModel):
    event: Literal["delta"] = "delta"
    text: str


class StreamEnd(BaseModel):
    event: Literal["end"] = "end"
    answer: AssistantAnswer


StreamEvent = StreamStart | StreamDelta | StreamEnd
