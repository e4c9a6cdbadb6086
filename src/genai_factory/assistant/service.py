"""``AssistantService``: the product. Routes a question to chat, RAG or the agent and answers.

The route is ``chat`` (the model alone), ``rag`` (retrieve, then answer from numbered sources),
``agent`` (the ReAct agent with its tools), or ``auto``: the agent when the routing heuristic of
:mod:`~genai_factory.assistant.routing` says the question is about its data or is arithmetic, else
RAG when the best retrieved chunk scores at least ``min_score``, else chat. Every answer carries its
citations, usage and cost, per-stage latency, the model that answered and a trace id; an agent
answer also carries its steps and whether a limit cut it short.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from genai_factory.agents.react import ReActAgent
from genai_factory.agents.steps import AgentStep, StopReason
from genai_factory.assistant.routing import DataTerms, data_terms_for, wants_agent
from genai_factory.exceptions import InvalidRequestError
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import PriceLike, priced
from genai_factory.memory.protocol import SessionStore
from genai_factory.messages import ChatOptions, Citation, FinishReason, Message, ScoredChunk, Usage
from genai_factory.observability.tracing import current_trace_id, stage_span
from genai_factory.rag.index import SearchIndex
from genai_factory.rag.prompting import build_chat_messages, build_rag_messages, citations_for
from genai_factory.safety.gate import RequestSafety, SafetyGate
from genai_factory.safety.pipeline import SafetyPipeline, SafetyReport

if TYPE_CHECKING:
    from genai_factory.assistant.streaming import StreamEvent

Mode = Literal["auto", "chat", "rag", "agent"]
#: Small models sometimes echo the prompt's layout; an answer ends where a new question would begin.
RAG_STOP = ("\nQuestion:", "\nContext:")
Route = Literal["chat", "rag", "agent"]


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
    #: What the guards did: input verdicts, dropped sources, output verdicts (``None``: guards off).
    safety: SafetyReport | None = None


class AssistantService:
    """Answers questions with a chat model and, when useful, a knowledge index.

    Args:
        model: the chat model (typically the retry/breaker/fallback chain).
        index: the knowledge index, or ``None`` for chat only.
        system_prompt: the assistant's instructions.
        top_k: sources retrieved per question.
        min_score: in ``auto`` mode, RAG runs only when the best source scores at least this.
        prices: model id → price, to fill ``usage.cost_usd``.
        history: session memory; ``None`` keeps no history.
        agent: the agent of the agent route; ``None`` disables the route.
        auto_agent: whether ``auto`` mode may choose the agent.
    """

    def __init__(
        self,
        model: ChatModel,
        index: SearchIndex | None,
        *,
        system_prompt: str,
        top_k: int = 4,
        min_score: float = 0.25,
        max_tokens: int = 256,
        temperature: float = 0.0,
        excerpt_chars: int = 300,
        source_chars: int = 600,
        prices: Mapping[str, PriceLike] | None = None,
        history: SessionStore | None = None,
        agent: ReActAgent | None = None,
        auto_agent: bool = True,
        safety: SafetyPipeline | None = None,
    ) -> None:
        self.model = model
        self.index = index
        self.system_prompt = system_prompt
        self.top_k = top_k
        self.min_score = min_score
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.excerpt_chars = excerpt_chars
        self.source_chars = source_chars
        self.prices = prices or {}
        self.history = history
        self.agent = agent
        self.auto_agent = auto_agent
        self.safety = SafetyGate(safety, system_prompt)
        self._data_terms: DataTerms | None = None
        self._data_terms_read = False

    async def _wants_agent(self, query: str, mode: Mode) -> bool:
        if mode == "agent":
            if self.agent is None:
                raise InvalidRequestError("the agent route is disabled (agents.enabled)")
            return True
        if mode != "auto" or self.agent is None or not self.auto_agent:
            return False
        if not self._data_terms_read:
            self._data_terms = await data_terms_for(self.agent.tools)
            self._data_terms_read = True
        return wants_agent(query, self._data_terms)

    async def _retrieve(self, query: str, mode: Mode) -> tuple[Route, list[ScoredChunk]]:
        if mode == "chat" or self.index is None:
            return "chat", []
        with stage_span("retrieval", top_k=self.top_k):
            hits = await self.index.search(query, self.top_k)
        if mode == "rag":
            return "rag", hits
        if hits and hits[0].score >= self.min_score:
            return "rag", hits
        return "chat", []

    async def generate(
        self,
        query: str,
        *,
        mode: Mode = "auto",
        session_id: str | None = None,
        max_tokens: int | None = None,
        reveal_pii: bool = False,
    ) -> AssistantAnswer:
        """Answer one question.

        ``reveal_pii``: the caller is authorised to see the values behind reversible redaction
        placeholders in the answer (the model and the session history only see placeholders).
        """
        started = time.perf_counter()
        trace_id = current_trace_id() or uuid.uuid4().hex
        stages: dict[str, float] = {}

        mark = time.perf_counter()
        guarded = self.safety.start(query, mode, reveal=reveal_pii)
        query = guarded.query
        if guarded.pipeline is not None:
            stages["input_guards"] = _ms_since(mark)
        mark = time.perf_counter()
        if await self._wants_agent(query, mode):
            stages["routing"] = _ms_since(mark)
            return await self._agent_answer(query, trace_id, started, stages, session_id, guarded)
        history = await self.history.get(session_id) if self.history and session_id else []
        mark = time.perf_counter()
        route, hits = await self._retrieve(query, mode)
        hits = guarded.screen(hits, route)
        stages["retrieval"] = _ms_since(mark)

        if route == "rag":
            messages = build_rag_messages(
                query,
                hits,
                system_prompt=self.system_prompt,
                history=history,
                max_source_chars=self.source_chars,
            )
        else:
            messages = build_chat_messages(query, system_prompt=self.system_prompt, history=history)
        options = ChatOptions(
            max_tokens=max_tokens or self.max_tokens,
            temperature=self.temperature,
            stop=RAG_STOP if route == "rag" else (),
        )

        mark = time.perf_counter()
        response = await self.model.chat(messages, options)
        stages["llm"] = _ms_since(mark)
        mark = time.perf_counter()
        text = guarded.answer(response.text, route, hits)
        if guarded.pipeline is not None:
            stages["output_guards"] = _ms_since(mark)

        if self.history and session_id:
            await self.history.append(session_id, [Message.user(query), Message.assistant(text)])
        return AssistantAnswer(
            answer=guarded.shown(text).strip(),
            citations=citations_for(response.text, hits, excerpt_chars=self.excerpt_chars),
            usage=priced(response.usage, response.model, self.prices),
            latency_ms=_ms_since(started),
            model=response.model,
            trace_id=trace_id,
            route=route,
            finish_reason=response.finish_reason,
            session_id=session_id,
            stages_ms=stages,
            safety=guarded.summary(),
        )

    async def _agent_answer(
        self,
        query: str,
        trace_id: str,
        started: float,
        stages: dict[str, float],
        session_id: str | None,
        guarded: RequestSafety | None = None,
    ) -> AssistantAnswer:
        assert self.agent is not None
        mark = time.perf_counter()
        result = await self.agent.run(query, trace_id=trace_id, model=self.model)
        stages["agent"] = _ms_since(mark)
        answer = guarded.answer(result.answer, "agent") if guarded else result.answer
        if self.history and session_id:
            await self.history.append(session_id, [Message.user(query), Message.assistant(answer)])
        return AssistantAnswer(
            answer=guarded.shown(answer) if guarded else answer,
            usage=priced(result.usage, result.model, self.prices),
            latency_ms=_ms_since(started),
            model=result.model,
            trace_id=trace_id,
            route="agent",
            session_id=session_id,
            stages_ms=stages,
            steps=result.steps,
            limit_hit=result.limit_hit,
            stop_reason=result.stop_reason,
            safety=guarded.summary() if guarded else None,
        )

    def stream(
        self,
        query: str,
        *,
        mode: Mode = "auto",
        session_id: str | None = None,
        max_tokens: int | None = None,
        reveal_pii: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """Answer one question as events: start, answer deltas, end (``assistant.streaming``)."""
        from genai_factory.assistant.streaming import stream_answer

        return stream_answer(
            self,
            query,
            mode=mode,
            session_id=session_id,
            max_tokens=max_tokens,
            reveal_pii=reveal_pii,
        )


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 2)
