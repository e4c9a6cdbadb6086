"""``AssistantService``: the product. Routes a question to chat or RAG and answers with sources.

The route is ``chat`` (the model alone), ``rag`` (retrieve, then answer from numbered sources), or
``auto``: RAG when the best retrieved chunk scores at least ``min_score``, chat otherwise. Every
answer carries its citations, usage and cost, per-stage latency, the model that answered and a
trace id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field

from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import PriceLike, priced
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.messages import ChatOptions, Citation, FinishReason, Message, ScoredChunk, Usage
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.prompting import build_chat_messages, build_rag_messages, citations_for

Mode = Literal["auto", "chat", "rag"]
#: Small models sometimes echo the prompt's layout; an answer ends where a new question would begin.
RAG_STOP = ("\nQuestion:", "\nContext:")
Route = Literal["chat", "rag"]


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
    """

    def __init__(
        self,
        model: ChatModel,
        index: KnowledgeIndex | None,
        *,
        system_prompt: str,
        top_k: int = 4,
        min_score: float = 0.25,
        max_tokens: int = 256,
        temperature: float = 0.0,
        excerpt_chars: int = 300,
        source_chars: int = 600,
        prices: Mapping[str, PriceLike] | None = None,
        history: InMemoryHistory | None = None,
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

    async def _retrieve(self, query: str, mode: Mode) -> tuple[Route, list[ScoredChunk]]:
        if mode == "chat" or self.index is None:
            return "chat", []
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
    ) -> AssistantAnswer:
        """Answer one question."""
        started = time.perf_counter()
        trace_id = uuid.uuid4().hex
        stages: dict[str, float] = {}

        history = await self.history.get(session_id) if self.history and session_id else []
        mark = time.perf_counter()
        route, hits = await self._retrieve(query, mode)
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

        if self.history and session_id:
            await self.history.append(
                session_id, [Message.user(query), Message.assistant(response.text)]
            )
        return AssistantAnswer(
            answer=response.text.strip(),
            citations=citations_for(response.text, hits, excerpt_chars=self.excerpt_chars),
            usage=priced(response.usage, response.model, self.prices),
            latency_ms=_ms_since(started),
            model=response.model,
            trace_id=trace_id,
            route=route,
            finish_reason=response.finish_reason,
            session_id=session_id,
            stages_ms=stages,
        )


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 2)
