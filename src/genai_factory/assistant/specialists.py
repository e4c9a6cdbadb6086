"""The specialists of the orchestrator: each answers one step of a plan within its own limits.

* :class:`DocumentsSpecialist` (``documents``): retrieves from the knowledge index, screens the
  chunks with the request's context guards, and asks the model to answer from the numbered sources
  (the RAG prompt), citing them. When the model declines although a source states the answer, the
  source's sentence answers (:class:`~genai_factory.assistant.extractive.SentenceExtractor`).
* :class:`AgentSpecialist` (``sql``, ``calculator``): a :class:`~genai_factory.agents.react.ReActAgent`
  over its own tools only (``sql_schema`` and ``sql_query``; ``calculator``), with its own step,
  time and token limits. The tools are wrapped per request so that every output passes the
  request's context guards before the model reads it (a withheld output is in the request's
  safety report). With a backend that has native tool calling the agent uses it
  (``agents.action_format: auto``).

A specialist gets the step's question and the results of the earlier steps (already screened) and
returns a :class:`StepOutput`. Limits are per step: nothing is shared between steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from genai_factory.agents.assembly import action_format_for, tool_deps
from genai_factory.agents.formats import FormatName
from genai_factory.agents.knowledge import Searcher
from genai_factory.agents.react import MIN_STEP_TOKENS, AgentLimits, ReActAgent
from genai_factory.agents.registry import build_tools
from genai_factory.agents.steps import AgentResult, AgentStep, StopReason
from genai_factory.agents.tools import Tool
from genai_factory.assistant.extractive import SentenceExtractor
from genai_factory.assistant.planner import Specialist
from genai_factory.config import Settings, SpecialistSettings
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.messages import ChatOptions, ScoredChunk, Usage
from genai_factory.mlops.qa import abstained
from genai_factory.rag.prompting import RAG_STOP, build_rag_messages
from genai_factory.safety.gate import RequestSafety
from genai_factory.safety.tools import ScreenedTool

#: The safety policy every step uses (context guards on sources and tool outputs).
STEP_ROUTE = "agent"
#: The tools of each agent specialist (the last one is the one it cannot do without).
SPECIALIST_TOOLS: dict[Specialist, tuple[str, ...]] = {
    "sql": ("sql_schema", "sql_query"),
    "calculator": ("calculator",),
}


@dataclass
class StepInput:
    """What a specialist is given: the step's question, the request's safety state and the
    results of the earlier steps (screened)."""

    question: str
    safety: RequestSafety
    trace_id: str
    max_tokens: int
    context: list[str] = field(default_factory=list)


@dataclass
class StepOutput:
    """What a specialist produced: its answer, cost, agent steps, sources and SQL."""

    answer: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    stop_reason: StopReason = "answer"
    agent_steps: list[AgentStep] = field(default_factory=list)
    #: The sources the documents specialist gave the model, numbered from 1 in this order.
    hits: list[ScoredChunk] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)


class SpecialistRunner(Protocol):
    """Answers one step; ``limits.timeout_s`` is enforced around it by the orchestrator too."""

    name: Specialist
    limits: SpecialistSettings

    async def run(self, step: StepInput) -> StepOutput:
        """The answer of ``step`` within the limits; a limit never raises."""
        ...


def with_context(question: str, context: Sequence[str]) -> str:
    """``question`` preceded by the earlier steps' results, when there are any."""
    if not context:
        return question
    return "Known from earlier steps:\n" + "\n".join(context) + f"\n\n{question}"


class DocumentsSpecialist:
    """Answers a step from the knowledge index (see the module docstring)."""

    name: Specialist = "documents"

    def __init__(
        self,
        model: ChatModel,
        searcher: Searcher,
        *,
        system_prompt: str,
        limits: SpecialistSettings,
        top_k: int = 4,
        source_chars: int = 600,
        temperature: float = 0.0,
        extractor: SentenceExtractor | None = None,
    ) -> None:
        self.model = model
        self.searcher = searcher
        self.system_prompt = system_prompt
        self.limits = limits
        self.top_k = top_k
        self.source_chars = source_chars
        self.temperature = temperature
        self.extractor = extractor

    async def run(self, step: StepInput) -> StepOutput:
        found = await self.searcher.search(step.question, self.top_k)
        hits = step.safety.screen(found, STEP_ROUTE)
        if not hits:
            return StepOutput("The documents hold nothing about this.")
        messages = build_rag_messages(
            with_context(step.question, step.context),
            hits,
            system_prompt=self.system_prompt,
            max_source_chars=self.source_chars,
        )
        room = self.limits.token_budget - estimate_prompt_tokens(messages)
        max_tokens = min(step.max_tokens, room)
        if max_tokens < MIN_STEP_TOKENS:
            extracted = await self._extracted(step.question, hits)
            text = extracted or "The sources did not fit in the step's token budget."
            return StepOutput(text, stop_reason="token_budget", hits=hits)
        options = ChatOptions(
            max_tokens=max_tokens,
            temperature=self.temperature,
            stop=RAG_STOP,
            answer_from_sources=True,
        )
        response = await self.model.chat(messages, options)
        text = response.text.strip()
        if abstained(text):
            text = await self._extracted(step.question, hits) or text
        return StepOutput(text, response.usage, response.model, hits=hits)

    async def _extracted(self, question: str, hits: Sequence[ScoredChunk]) -> str | None:
        if self.extractor is None:
            return None
        return await self.extractor.answer(question, hits)


class AgentSpecialist:
    """Answers a step with a ReAct agent over its own tools (see the module docstring)."""

    def __init__(
        self,
        name: Specialist,
        model: ChatModel,
        tools: Sequence[Tool[Any]],
        *,
        limits: SpecialistSettings,
        action_format: FormatName = "json_schema",
        step_max_tokens: int = 160,
        temperature: float = 0.0,
    ) -> None:
        self.name = name
        self.model = model
        self.tools = list(tools)
        self.limits = limits
        self.action_format = action_format
        self.agent_limits = AgentLimits(
            max_steps=limits.max_steps,
            timeout_s=limits.timeout_s,
            token_budget=limits.token_budget,
            step_max_tokens=step_max_tokens,
        )
        self.temperature = temperature

    async def run(self, step: StepInput) -> StepOutput:
        tools = self.tools
        pipeline = step.safety.pipeline
        if pipeline is not None:
            report = step.safety.report
            tools = [ScreenedTool(t, pipeline, route=STEP_ROUTE, report=report) for t in tools]
        agent = ReActAgent(
            self.model,
            tools,
            action_format=self.action_format,
            limits=self.agent_limits,
            temperature=self.temperature,
        )
        result = await agent.run(
            step.question, trace_id=step.trace_id, max_tokens=step.max_tokens, context=step.context
        )
        return StepOutput(
            result.answer,
            result.usage,
            result.model,
            result.stop_reason,
            agent_steps=result.steps,
            sql=statements_used(result),
        )


def statements_used(result: AgentResult) -> list[str]:
    """The SQL statements the model chose and that ran (the loop's own reads left out), once each."""
    statements: list[str] = []
    for step in result.tool_steps("sql_query"):
        sql = step.input.get("sql")
        if step.ok and not step.automatic and isinstance(sql, str) and sql not in statements:
            statements.append(sql)
    return statements


def build_specialists(
    settings: Settings,
    model: ChatModel,
    searcher: Searcher | None,
    *,
    system_prompt: str,
    extractor: SentenceExtractor | None = None,
    agent_model: ChatModel | None = None,
) -> dict[Specialist, SpecialistRunner]:
    """The specialists the settings allow: a tool specialist needs its tools among
    ``agents.tools`` (and their dependencies), the documents one ``knowledge_search`` and an index.
    The tool specialists run on ``agent_model`` when given (the ``agents.adapter`` chain), the
    documents one on ``model``."""
    config = settings.agents
    limits = config.orchestrator
    built = {
        tool.name: tool for tool in build_tools(config.tools, tool_deps(settings, searcher)).tools
    }
    specialists: dict[Specialist, SpecialistRunner] = {}
    if searcher is not None and "knowledge_search" in built:
        specialists["documents"] = DocumentsSpecialist(
            model,
            searcher,
            system_prompt=system_prompt,
            limits=limits.documents,
            top_k=settings.rag.top_k,
            source_chars=settings.rag.source_chars,
            temperature=settings.llm.temperature,
            extractor=extractor,
        )
    limits_of: Mapping[Specialist, SpecialistSettings] = {
        "sql": limits.sql,
        "calculator": limits.calculator,
    }
    for name, tool_names in SPECIALIST_TOOLS.items():
        if tool_names[-1] in built:  # the tool that answers; the others help
            specialists[name] = AgentSpecialist(
                name,
                agent_model or model,
                [built[tool] for tool in tool_names if tool in built],
                limits=limits_of[name],
                action_format=action_format_for(settings),
                step_max_tokens=config.step_max_tokens,
                temperature=settings.llm.temperature,
            )
    return specialists
