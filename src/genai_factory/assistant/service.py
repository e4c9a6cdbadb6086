"""``AssistantService``: the product. Routes a question to chat, RAG or the agent and answers.

The route is ``chat`` (the model alone), ``rag`` (retrieve, then answer from numbered sources),
``agent`` (the ReAct agent with its tools), or ``auto``: the agent when the routing heuristic of
:mod:`~genai_factory.assistant.routing` says the question is about its data or is arithmetic, else
RAG when the best retrieved chunk scores at least ``min_score`` or a retrieved chunk's section
heading is named by the question (``extractive.names_section``), else chat. A question made of
several questions goes to the :class:`~genai_factory.assistant.orchestrator.Orchestrator` on the
agent route: always with ``mode=agent``, and with ``mode=auto`` when a step needs a tool (a question
of one step keeps the paths above). Every answer carries its
citations, usage and cost, per-stage latency, the model that answered and a trace id; an agent
answer also carries its steps and whether a limit cut it short.

Each request is one :class:`~genai_factory.assistant.turn.Turn`: prepared once, answered by the
model's ``chat`` (:meth:`generate`), its ``stream`` (:meth:`stream`) or the agent, and finished
once. :meth:`complete` and :meth:`stream_completion` answer a client-written conversation (the
OpenAI-compatible route) through the same turn, without retrieval or our system prompt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TypedDict, Unpack

from genai_factory.agents.react import ReActAgent
from genai_factory.assistant.answer import (
    AssistantAnswer,
    Mode,
    Route,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    StreamStart,
)
from genai_factory.assistant.extractive import (
    SentenceExtractor,
    chat_decline,
    is_short,
    may_be_declining,
    names_section,
    plain_decline,
    unsupported_numbers,
)
from genai_factory.assistant.orchestrator import Orchestrator
from genai_factory.assistant.planner import Plan
from genai_factory.assistant.routing import DataTerms, data_terms_for, wants_agent
from genai_factory.assistant.turn import Outcome, Turn
from genai_factory.exceptions import InvalidRequestError
from genai_factory.llm.base import ChatModel
from genai_factory.llm.collector import DeltaCollector
from genai_factory.llm.tokens import PriceLike
from genai_factory.memory.protocol import SessionStore
from genai_factory.messages import ChatOptions, Message, ScoredChunk
from genai_factory.mlops.qa import abstained
from genai_factory.observability.tracing import stage_span
from genai_factory.rag.index import SearchIndex
from genai_factory.rag.prompting import (
    RAG_STOP,
    build_chat_messages,
    build_rag_messages,
    citations_for,
    collapse_repeats,
    strip_citations,
    without_citations,
)
from genai_factory.safety.gate import INPUT_ROUTE, SafetyGate
from genai_factory.safety.pipeline import SafetyPipeline

#: The safety policy of client-written conversations (``/v1/chat/completions``).
CONVERSATION_ROUTE = "chat"


class Ask(TypedDict, total=False):
    """The options of one question.

    ``mode``: the route (``auto`` chooses). ``session_id``: the session whose history is used and
    extended. ``max_tokens``: caps the answer. ``reveal_pii``: the caller is authorised to see
    the values behind reversible redaction placeholders in the answer (the model and the session
    history only see placeholders). ``history``: earlier turns supplied by the caller, used
    instead of the session's (they are screened like the question).
    """

    mode: Mode
    session_id: str | None
    max_tokens: int | None
    reveal_pii: bool
    history: Sequence[Message] | None


#: In ``auto`` mode, a question whose best source scores below ``min_score`` still goes to RAG when
#: one sentence of the sources scores this much as its answer (:class:`SentenceExtractor`).
#: Measured on the guide's questions: the ones sent to plain chat before scored at most 0.80 when
#: the guide does not answer them, 1.14 and 1.31 when it does.
ROUTE_SCORE = 1.0


class AssistantService:
    """Answers questions with a chat model and, when useful, a knowledge index.

    Args:
        model: the chat model (the chain built by ``assistant.assembly``).
        index: the knowledge index, or ``None`` for chat only.
        system_prompt: the assistant's instructions.
        top_k: sources retrieved per question.
        min_score: in ``auto`` mode, RAG runs only when the best source scores at least this.
        prices: model id → price, to fill ``usage.cost_usd``.
        history: session memory; ``None`` keeps no history.
        agent: the agent of the agent route (on the same model chain); ``None`` disables it.
        auto_agent: whether ``auto`` mode may choose the agent.
        safety: the guards of every route; ``None`` turns them off.
        extractor: on the RAG route, when the model declines although a source states the
            answer, answers with that source's sentence (:mod:`~genai_factory.assistant.extractive`);
            ``None`` keeps the model's reply.
        orchestrator: answers questions made of several questions on the agent route; ``None``
            sends them to the agent whole.
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
        extractor: SentenceExtractor | None = None,
        orchestrator: Orchestrator | None = None,
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
        self.extractor = extractor
        self.orchestrator = orchestrator
        self._data_terms: DataTerms | None = None
        self._data_terms_read = False

    # -- the four ways in --------------------------------------------------------------------

    async def generate(self, query: str, **ask: Unpack[Ask]) -> AssistantAnswer:
        """Answer one question (the options are those of :class:`Ask`)."""
        return await self._answered(await self._prepare(query, **ask))

    async def stream(self, query: str, **ask: Unpack[Ask]) -> AsyncIterator[StreamEvent]:
        """Answer one question as events (:mod:`~genai_factory.assistant.answer`): start, answer
        deltas, end. Refusals (guards, limits, a failing backend) raise before the first event."""
        async for event in self._streamed(await self._prepare(query, **ask)):
            yield event

    async def complete(
        self, messages: Sequence[Message], options: ChatOptions, *, reveal_pii: bool = False
    ) -> AssistantAnswer:
        """Answer a client-written conversation with the model alone (route ``chat``)."""
        return await self._answered(self._prepare_conversation(messages, options, reveal_pii))

    async def stream_completion(
        self, messages: Sequence[Message], options: ChatOptions, *, reveal_pii: bool = False
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`complete` as events."""
        turn = self._prepare_conversation(messages, options, reveal_pii)
        async for event in self._streamed(turn):
            yield event

    # -- prepare -----------------------------------------------------------------------------

    async def _prepare(
        self,
        query: str,
        *,
        mode: Mode = "auto",
        session_id: str | None = None,
        max_tokens: int | None = None,
        reveal_pii: bool = False,
        history: Sequence[Message] | None = None,
    ) -> Turn:
        turn = Turn(query, self.safety.start(mode, reveal=reveal_pii), session_id=session_id)
        if mode == "auto" and turn.guarded and await self._bound_for_agent(query):
            # The input policy is the route's: routing reads the text in the process (no model),
            # so a question bound for the agent is screened by the agent route's input guards.
            turn.safety.input_route = INPUT_ROUTE["agent"]
        with turn.timed("input_guards", when=turn.guarded):
            turn.query = turn.safety.screen_query(query)
            if history is not None:
                history = turn.safety.screen_messages(history, INPUT_ROUTE.get(mode, mode))
        turn.options = ChatOptions(
            max_tokens=max_tokens or self.max_tokens, temperature=self.temperature
        )
        with turn.timed("routing"):
            turn.plan = await self._plan(turn.query, mode)
            to_agent = turn.plan is not None or await self._wants_agent(turn.query, mode)
        if to_agent:
            turn.route = "agent"
            return turn
        if history is None:
            history = await self.history.get(session_id) if self.history and session_id else []
        with turn.timed("retrieval"):
            turn.route, hits = await self._retrieve(turn.query, mode)
            turn.hits = turn.safety.screen(hits, turn.route)
        turn.messages = self._prompt(turn, history)
        return turn

    def _prepare_conversation(
        self, messages: Sequence[Message], options: ChatOptions, reveal: bool
    ) -> Turn:
        safety = self.safety.start(CONVERSATION_ROUTE, reveal=reveal, system_prompt="")
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        turn = Turn(last_user, safety, options=options, remember=False)
        with turn.timed("input_guards", when=turn.guarded):
            turn.messages = safety.screen_messages(messages, CONVERSATION_ROUTE)
        return turn

    async def _bound_for_agent(self, query: str) -> bool:
        """Whether ``mode: auto`` sends ``query`` (as the user wrote it) to the agent route."""
        return await self._plan(query, "auto") is not None or await self._wants_agent(query, "auto")

    async def _wants_agent(self, query: str, mode: Mode) -> bool:
        if mode == "agent":
            if self.agent is None:
                raise InvalidRequestError("the agent route is disabled (agents.enabled)")
            return True
        if mode != "auto" or self.agent is None or not self.auto_agent:
            return False
        return wants_agent(query, await self._terms())

    async def _terms(self) -> DataTerms | None:
        """The agent database's tables and columns (read once)."""
        if not self._data_terms_read and self.agent is not None:
            self._data_terms = await data_terms_for(self.agent.tools)
            self._data_terms_read = True
        return self._data_terms

    async def _plan(self, query: str, mode: Mode) -> Plan | None:
        """The plan of a question the orchestrator answers, else ``None`` (see the docstring)."""
        if self.orchestrator is None or self.agent is None:
            return None
        if mode != "agent" and (mode != "auto" or not self.auto_agent):
            return None
        plan = self.orchestrator.plan(query, await self._terms())
        if not plan.multi_step or (mode == "auto" and not plan.needs_tools()):
            return None
        return plan

    async def _retrieve(self, query: str, mode: Mode) -> tuple[Route, list[ScoredChunk]]:
        if mode == "chat" or self.index is None:
            return "chat", []
        with stage_span("retrieval", top_k=self.top_k):
            hits = await self.index.search(query, self.top_k)
        if mode == "rag":
            return "rag", hits
        if hits and hits[0].score >= self.min_score:
            return "rag", hits
        if any(names_section(query, hit.chunk.heading) for hit in hits):
            return "rag", hits
        if await self._answered_by_a_sentence(query, hits):
            return "rag", hits
        return "chat", []

    async def _answered_by_a_sentence(self, query: str, hits: Sequence[ScoredChunk]) -> bool:
        """Whether a sentence of the sources answers ``query`` clearly (its extraction score at
        least :data:`ROUTE_SCORE`) although the chunks as wholes scored low: a short question
        naming a setting by an abbreviation ("What is the RRF constant?") matches its table row
        far better than any chunk's vector."""
        if self.extractor is None or not hits:
            return False
        best = await self.extractor.best(query, hits)
        return best is not None and best[1] >= ROUTE_SCORE

    def _prompt(self, turn: Turn, history: Sequence[Message]) -> list[Message]:
        if turn.route != "rag":
            return list(
                build_chat_messages(turn.query, system_prompt=self.system_prompt, history=history)
            )
        turn.options = turn.options.model_copy(
            update={"stop": RAG_STOP, "answer_from_sources": True}
        )
        return list(
            build_rag_messages(
                turn.query,
                turn.hits,
                system_prompt=self.system_prompt,
                history=history,
                max_source_chars=self.source_chars,
            )
        )

    # -- middle ------------------------------------------------------------------------------

    async def _answered(self, turn: Turn) -> AssistantAnswer:
        if turn.route == "agent":
            outcome = await self._run_agent(turn)
        else:
            with turn.timed("llm"):
                response = await self.model.chat(turn.messages, turn.options)
            outcome = turn.checked(response)
            outcome.text = collapse_repeats(outcome.text)
            if turn.route == "chat":
                outcome.text = chat_decline(strip_citations(outcome.text))
            if self._should_extract(turn, outcome.text):
                outcome.text = await self._extracted(turn) or plain_decline(outcome.text)
            elif self._may_extract(turn):
                outcome.text = await self._supported(turn, outcome.text)
        return await self._finish(turn, outcome)

    async def _streamed(self, turn: Turn) -> AsyncIterator[StreamEvent]:
        if turn.route == "agent":
            outcome = await self._run_agent(turn)
            yield self._start_event(turn)
            if text := turn.safety.shown(outcome.text).strip():
                yield StreamDelta(text=text)
        else:
            collector = DeltaCollector(model=self.model.name)
            deltas = self.model.stream(turn.messages, turn.options)
            pieces = turn.guarded_stream(deltas, collector)
            if turn.route == "chat":  # no sources: nothing to cite
                pieces = without_citations(pieces)
            # While the answer may still be the model declining, or a short phrase, it is held
            # back: a source's sentence may replace it once the stream has ended (see
            # ``_extracted`` and ``_supported``).
            checks_support = self._may_extract(turn)
            held, holding = "", checks_support or turn.route == "chat"
            try:
                first = await anext(pieces, None)  # a refusal raises before the start event
                yield self._start_event(turn)
                async for text in _chained(first, pieces):
                    if holding:
                        held += text
                        holding = may_be_declining(held) or (checks_support and is_short(held))
                        text = "" if holding else held
                    if text:
                        yield StreamDelta(text=text)
            finally:
                await pieces.aclose()
            response = collector.response(turn.messages)
            text = collapse_repeats(response.text)
            text = strip_citations(text) if turn.route == "chat" else text
            outcome = Outcome.of_response(response, text)
            if holding:
                outcome.text, shown = await self._resolved(turn, held, text)
                if shown:
                    yield StreamDelta(text=shown)
            elif self._may_extract(turn):
                # A longer answer has been streamed as it came; when it does not come from the
                # best-matching sentences, the end event carries that sentence instead.
                outcome.text = await self._supported(turn, text)
        yield StreamEnd(answer=await self._finish(turn, outcome))

    async def _resolved(self, turn: Turn, held: str, text: str) -> tuple[str, str]:
        """What a reply held back to its end (``held`` as streamed, ``text`` as answered) becomes:
        the answer's text and what the client is sent of it."""
        if turn.route == "chat":
            plain = chat_decline(text)  # ``text`` has a loop collapsed already
            return plain, (turn.safety.shown(plain) if plain != held else held)
        if abstained(held):
            plain = plain_decline(held)
            extracted = await self._extracted(turn) or (plain if plain != held else None)
        else:
            supported = await self._supported(turn, held)
            extracted = None if supported == held else supported
        if extracted:
            return extracted, turn.safety.shown(extracted)
        return text, held

    def _may_extract(self, turn: Turn) -> bool:
        return self.extractor is not None and turn.route == "rag" and bool(turn.hits)

    def _should_extract(self, turn: Turn, text: str) -> bool:
        """The model declined, or stated a figure its sources do not hold."""
        if not self._may_extract(turn):
            return False
        return abstained(text) or unsupported_numbers(
            text, turn.hits, source_chars=self.source_chars
        )

    async def _extracted(self, turn: Turn) -> str | None:
        """The cited source sentence that answers the turn's question, after the output guards;
        ``None`` when there is no extractor, no source or no sentence that matches well."""
        if self.extractor is None or not turn.hits:
            return None
        with turn.timed("extract"):
            sentence = await self.extractor.answer(turn.query, turn.hits)
        if sentence is None:
            return None
        with turn.timed("output_guards", when=turn.guarded):
            return turn.safety.answer(sentence, turn.route, turn.hits)

    async def _supported(self, turn: Turn, text: str) -> str:
        """``text``, or the cited source sentence that answers the question when ``text`` does not
        come from the best-matching sentences (:meth:`SentenceExtractor.unsupported_answer`)."""
        if self.extractor is None:
            return text
        with turn.timed("extract"):
            sentence = await self.extractor.unsupported_answer(turn.query, text, turn.hits)
        if sentence is None:
            return text
        with turn.timed("output_guards", when=turn.guarded):
            return turn.safety.answer(sentence, turn.route, turn.hits)

    def _start_event(self, turn: Turn) -> StreamStart:
        return StreamStart(
            trace_id=turn.trace_id,
            route=turn.route,
            session_id=turn.session_id,
            citations=citations_for("", turn.hits, excerpt_chars=self.excerpt_chars),
        )

    async def _run_agent(self, turn: Turn) -> Outcome:
        if turn.plan is not None:
            return await self._run_plan(turn, turn.plan)
        assert self.agent is not None
        with turn.timed("agent"):
            result = await self.agent.run(
                turn.query, trace_id=turn.trace_id, max_tokens=turn.options.max_tokens
            )
        with turn.timed("output_guards", when=turn.guarded):
            text = turn.safety.answer(result.answer, "agent")
        return Outcome.of_agent(result, text)

    async def _run_plan(self, turn: Turn, plan: Plan) -> Outcome:
        assert self.orchestrator is not None
        with turn.timed("agent"):
            done = await self.orchestrator.run(
                plan,
                safety=turn.safety,
                trace_id=turn.trace_id,
                max_tokens=turn.options.max_tokens,
            )
        turn.hits = done.hits
        with turn.timed("output_guards", when=turn.guarded):
            text = turn.safety.answer(done.text, "agent", done.hits)
        return Outcome(
            text,
            done.usage,
            done.model,
            steps=done.agent_steps,
            limit_hit=done.limit_hit,
            stop_reason=done.stop_reason,
            plan=done.results,
            sql=done.sql,
        )

    # -- finish ------------------------------------------------------------------------------

    async def _finish(self, turn: Turn, outcome: Outcome) -> AssistantAnswer:
        if self.history is not None and turn.session_id and turn.remember:
            await self.history.append(
                turn.session_id, [Message.user(turn.query), Message.assistant(outcome.text)]
            )
        return turn.finish(outcome, prices=self.prices, excerpt_chars=self.excerpt_chars)


async def _chained(first: str | None, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    if first:
        yield first
    async for item in rest:
        yield item
