"""Streamed answers: the events of ``AssistantService.stream``.

A stream is one :class:`StreamStart` (trace id, route, the retrieved sources, none marked cited
yet), then :class:`StreamDelta` pieces of the answer as the model writes them, then one
:class:`StreamEnd` holding the complete ``AssistantAnswer`` (citations marked, usage, cost, latency,
stages). The model is asked for its first piece *before* the start event, so a refusal (rate limit,
budget) or a failing backend raises before anything is yielded and can still become an HTTP error.
The agent route does not stream token by token: its answer comes as one delta.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from genai_factory.assistant.service import (
    RAG_STOP,
    AssistantAnswer,
    AssistantService,
    Mode,
    Route,
)
from genai_factory.llm.tokens import estimate_prompt_tokens, estimate_tokens, priced
from genai_factory.messages import (
    ChatDelta,
    ChatOptions,
    Citation,
    FinishReason,
    Message,
    ScoredChunk,
    Usage,
)
from genai_factory.observability.tracing import current_trace_id
from genai_factory.rag.prompting import build_chat_messages, build_rag_messages, citations_for


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


@dataclass
class _Collected:
    """What the model streamed so far."""

    pieces: list[str] = field(default_factory=list)
    usage: Usage | None = None
    model: str = ""
    finish_reason: FinishReason = "stop"

    def add(self, delta: ChatDelta) -> str:
        """Keep ``delta``; returns the text to send (leading whitespace of the answer dropped)."""
        self.usage = delta.usage or self.usage
        self.model = delta.model or self.model
        self.finish_reason = delta.finish_reason or self.finish_reason
        text = delta.text if self.pieces else delta.text.lstrip()
        if text:
            self.pieces.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _prompt(
    service: AssistantService,
    query: str,
    route: Route,
    hits: list[ScoredChunk],
    history: list[Message],
    max_tokens: int | None,
) -> tuple[list[Message], ChatOptions]:
    if route == "rag":
        messages = build_rag_messages(
            query,
            hits,
            system_prompt=service.system_prompt,
            history=history,
            max_source_chars=service.source_chars,
        )
    else:
        messages = build_chat_messages(query, system_prompt=service.system_prompt, history=history)
    options = ChatOptions(
        max_tokens=max_tokens or service.max_tokens,
        temperature=service.temperature,
        stop=RAG_STOP if route == "rag" else (),
    )
    return list(messages), options


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 2)


async def stream_answer(
    service: AssistantService,
    query: str,
    *,
    mode: Mode = "auto",
    session_id: str | None = None,
    max_tokens: int | None = None,
    reveal_pii: bool = False,
) -> AsyncIterator[StreamEvent]:
    """The events of one streamed answer (see the module docstring)."""
    guarded = service.safety.start(query, mode, reveal=reveal_pii)  # input guards, before routing
    query = guarded.query
    if await service._wants_agent(query, mode):
        answer = await service.generate(
            query, mode="agent", session_id=session_id, max_tokens=max_tokens, reveal_pii=reveal_pii
        )
        yield StreamStart(trace_id=answer.trace_id, route=answer.route, session_id=session_id)
        if answer.answer:
            yield StreamDelta(text=answer.answer)
        yield StreamEnd(answer=answer)
        return
    started = time.perf_counter()
    trace_id = current_trace_id() or uuid.uuid4().hex
    history = await service.history.get(session_id) if service.history and session_id else []
    mark = time.perf_counter()
    route, hits = await service._retrieve(query, mode)
    hits = guarded.screen(hits, route)
    stages = {"retrieval": _ms_since(mark)}
    messages, options = _prompt(service, query, route, hits, history, max_tokens)
    mark = time.perf_counter()
    collected = _Collected()
    # Output guards see the text through a hold-back buffer before the client does.
    deltas = guarded.stream(service.model.stream(messages, options), route, hits)
    try:
        first = await anext(deltas, None)
        excerpt = service.excerpt_chars
        citations = citations_for("", hits, excerpt_chars=excerpt)
        yield StreamStart(
            trace_id=trace_id, route=route, session_id=session_id, citations=citations
        )
        # Released text is cut on whitespace, so a placeholder is never split between deltas.
        if first is not None and (text := collected.add(first)):
            yield StreamDelta(text=guarded.shown(text))
        async for delta in deltas:
            if text := collected.add(delta):
                yield StreamDelta(text=guarded.shown(text))
    finally:
        closer = getattr(deltas, "aclose", None)
        if closer is not None:
            await closer()
    stages["llm"] = _ms_since(mark)
    if service.history and session_id:
        await service.history.append(
            session_id, [Message.user(query), Message.assistant(collected.text)]
        )
    usage = collected.usage or Usage(
        prompt_tokens=estimate_prompt_tokens(messages),
        completion_tokens=estimate_tokens(collected.text),
        estimated=True,
    )
    model = collected.model or service.model.name
    yield StreamEnd(
        answer=AssistantAnswer(
            answer=guarded.shown(collected.text).strip(),
            citations=citations_for(collected.text, hits, excerpt_chars=service.excerpt_chars),
            usage=priced(usage, model, service.prices),
            latency_ms=_ms_since(started),
            model=model,
            trace_id=trace_id,
            route=route,
            finish_reason=collected.finish_reason,
            session_id=session_id,
            stages_ms=stages,
            safety=guarded.summary(),
        )
    )
