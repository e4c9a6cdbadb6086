"""``ReActAgent``: thought → action → observation, until a final answer or a limit.

The loop is async and bounded three ways: ``max_steps`` model decisions, a wall-clock
``timeout_s`` for the whole run, and a ``token_budget`` for all model calls together (a call that
could not fit is not made). When a limit stops it, the run still returns an answer: after the step
limit the model gets one last call that may only give the final answer; otherwise (or when that
fails) the answer says so and quotes the last useful observation. ``AgentResult.stop_reason`` and
``limit_hit`` say which. A limit never raises.

A tool's failure (bad arguments, a refused query, its timeout, an unknown tool, a crash) and an
unparsable reply become observations the model sees on its next step. A repeated action is not run
again: the model is stuck, so its next call may only give the final answer. With SQL tools, the
loop reads the database before the first model call (:mod:`~genai_factory.agents.preload`,
``automatic`` steps), which spares a small model a step it often gets wrong. Every step is kept in
the result and logged with the trace id, step, tool and latency.

The time limit stops the waiting, not a computation already handed to a thread: a llama.cpp call in
flight finishes on its worker (and its tokens are not counted), a SQL query stops at its own limit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from genai_factory.agents.actions import ActionError, AgentAction
from genai_factory.agents.formats import (
    ActionFormat,
    Exchange,
    FormatName,
    JsonActionFormat,
    NativeToolFormat,
)
from genai_factory.agents.observe import ms_since, observe
from genai_factory.agents.preload import preload_database
from genai_factory.agents.prompting import clip, render_observation
from genai_factory.agents.staged import StagedJsonFormat
from genai_factory.agents.steps import (
    FINAL_ANSWER,
    INVALID_ACTION,
    AgentResult,
    AgentStep,
    StopReason,
)
from genai_factory.agents.tools import Tool
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.messages import ChatOptions, ChatResponse, Message, Usage

log = structlog.get_logger(__name__)

#: A model call is not made unless the budget leaves room for at least this many answer tokens.
MIN_STEP_TOKENS = 16
_LIMIT_WORDS: dict[StopReason, str] = {
    "answer": "",
    "max_steps": "step limit",
    "timeout": "time limit",
    "token_budget": "token budget",
}


@dataclass(frozen=True)
class AgentLimits:
    """How far one run may go."""

    max_steps: int = 5
    timeout_s: float = 60.0
    token_budget: int = 8_000
    step_max_tokens: int = 160

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.timeout_s <= 0 or self.token_budget < 1:
            raise ValueError("max_steps, timeout_s and token_budget must be positive")


@dataclass
class _Decision:
    """One decision of the model: its reply, the time it took, and its actions (``None`` when
    the reply was invalid and has been recorded as such)."""

    response: ChatResponse
    model_ms: float
    actions: list[AgentAction] | None


@dataclass
class _Run:
    """The state of one run; it survives a timeout that cancels the step in flight."""

    question: str
    trace_id: str
    started: float
    chat_model: ChatModel
    offered: list[Tool[Any]]
    hints: list[str] = field(default_factory=list)
    input_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[AgentStep] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    answer: str = ""
    last_result: tuple[str, str] | None = None
    #: Set by a repeated action: the next call may only give the final answer.
    answer_next: bool = False
    #: Tokens one model call may write.
    step_max_tokens: int = 160

    def add_step(self, step: AgentStep) -> AgentStep:
        self.steps.append(step)
        log.info(
            "agent_step",
            trace_id=self.trace_id,
            step=step.index,
            tool=step.tool,
            ok=step.ok,
            automatic=step.automatic,
            model_ms=step.model_ms,
            tool_ms=step.tool_ms,
        )
        return step


class ReActAgent:
    """A tool-using agent over any :class:`ChatModel`.

    Args:
        model: the chat model (wrappers welcome).
        tools: the tools it may call; names must be unique.
        action_format: ``json_schema`` (one constrained JSON action per step), ``json_staged``
            (choose, then fill in: for very small models) or ``native`` (OpenAI tool calling).
        limits: steps, wall-clock time and tokens per run.
        temperature: sampling temperature of every step.
        observation_chars: longest observation shown to the model.
        preload_schema: with ``sql_schema`` and ``sql_query`` both present, read the schema
            before the first model call and put it in the prompt.
        constrain_sql: with JSON actions and a preloaded schema, constrain ``sql_query`` to the
            simple SELECTs of :mod:`~genai_factory.agents.sql_grammar` over that schema, whose
            literals are known values of the column or copied from the question.
        tool_first: with JSON actions, the first action must be a tool (the agent route is for
            questions that need one; a small model otherwise "answers" from nothing).
    """

    def __init__(
        self,
        model: ChatModel,
        tools: Sequence[Tool[Any]],
        *,
        action_format: FormatName = "json_schema",
        limits: AgentLimits | None = None,
        temperature: float = 0.0,
        observation_chars: int = 700,
        preload_schema: bool = True,
        constrain_sql: bool = True,
        tool_first: bool = True,
    ) -> None:
        names = [tool.name for tool in tools]
        if len(set(names)) != len(names) or FINAL_ANSWER in names:
            raise ValueError(f"tool names must be unique and not {FINAL_ANSWER!r}: {names}")
        self.model = model
        self.tools = {tool.name: tool for tool in tools}
        self.action_format = action_format
        self.limits = limits or AgentLimits()
        self.temperature = temperature
        self.observation_chars = observation_chars
        self.preload_schema = preload_schema
        self.constrain_sql = constrain_sql and action_format != "native"
        self.tool_first = tool_first

    async def run(
        self,
        question: str,
        *,
        trace_id: str | None = None,
        max_tokens: int | None = None,
        context: Sequence[str] = (),
    ) -> AgentResult:
        """Answer ``question`` with the tools; never raises for a tool failure or a limit.

        ``max_tokens`` caps the tokens of each model call of this run (below the limits'
        ``step_max_tokens``, and never below ``MIN_STEP_TOKENS``), as it caps the answer on the
        other routes. ``context``: lines the model reads with the tool descriptions (the results
        of earlier steps of an orchestrated plan).
        """
        step_cap = self.limits.step_max_tokens
        run = _Run(
            question=question,
            trace_id=trace_id or uuid.uuid4().hex,
            started=time.perf_counter(),
            chat_model=self.model,
            offered=list(self.tools.values()),
            step_max_tokens=min(step_cap, max(max_tokens, MIN_STEP_TOKENS))
            if max_tokens
            else step_cap,
            hints=list(context),
        )
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                stop = await self._loop(run)
                if stop == "max_steps":
                    await self._final_call(run)
        except TimeoutError:
            stop = "timeout"
        return self._result(run, stop)

    def _result(self, run: _Run, stop: StopReason) -> AgentResult:
        if not run.answer:
            run.answer = self._fallback_answer(run, stop)
        log.info(
            "agent_done",
            trace_id=run.trace_id,
            stop_reason=stop,
            steps=len(run.steps),
            tokens=run.usage.total_tokens,
        )
        return AgentResult(
            answer=run.answer,
            steps=run.steps,
            stop_reason=stop,
            usage=run.usage,
            model=run.model or run.chat_model.name,
            latency_ms=ms_since(run.started),
        )

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self, run: _Run) -> StopReason:
        await self._preload(run)
        for _ in range(self.limits.max_steps):
            decision = await self._decide(run, final=run.answer_next)
            run.answer_next = False
            if decision is None:
                return "token_budget"
            if decision.actions is None:
                continue
            model_ms = decision.model_ms
            if self._finish_if_final(run, decision.actions, model_ms):
                return "answer"
            exchange = Exchange(decision.response)
            for action in decision.actions:
                observation = await self._act(run, action, model_ms)
                exchange.outcomes.append((action, observation))
                model_ms = 0.0  # the model's time is counted once per reply
            run.exchanges.append(exchange)
        return "max_steps"

    async def _final_call(self, run: _Run) -> None:
        """After the step limit: one call that may only answer."""
        decision = await self._decide(run, final=True)
        if decision is not None and decision.actions is not None:
            self._finish_if_final(run, decision.actions, decision.model_ms)

    async def _decide(self, run: _Run, *, final: bool) -> _Decision | None:
        """The model's next actions (``None``: the budget is spent; ``actions=None``: invalid)."""
        action_format = self._format(run)
        messages = action_format.messages(run.question, run.hints, run.exchanges, final=final)
        tool_only = self.tool_first and not run.seen
        called = await self._call(
            run, messages, lambda o: action_format.options(o, final=final, tool_only=tool_only)
        )
        if called is None:
            return None
        response, model_ms = called
        try:
            actions = action_format.parse(response)
        except ActionError as exc:
            self._record_invalid(run, response, exc, model_ms)
            return _Decision(response, model_ms, None)
        if isinstance(action_format, StagedJsonFormat):
            return await self._fill(run, action_format, _Decision(response, model_ms, actions))
        return _Decision(response, model_ms, actions)

    async def _fill(
        self, run: _Run, staged: StagedJsonFormat, decision: _Decision
    ) -> _Decision | None:
        """Second stage: ask for the input of each chosen action."""
        filled = []
        for action in decision.actions or []:
            if action.tool not in staged.tools and not action.is_final:
                filled.append(action)  # an unknown tool: _act reports it
                continue
            messages = staged.input_messages(action, run.question, run.hints, run.exchanges)
            called = await self._call(run, messages, partial(staged.input_options, action))
            if called is None:
                return None
            reply, model_ms = called
            decision.model_ms += model_ms
            try:
                filled.append(staged.parse_input(action, reply))
            except ActionError as exc:
                self._record_invalid(run, reply, exc, decision.model_ms)
                return _Decision(reply, decision.model_ms, None)
        decision.actions = filled
        return decision

    async def _call(
        self,
        run: _Run,
        messages: list[Message],
        make_options: Callable[[ChatOptions], ChatOptions],
    ) -> tuple[ChatResponse, float] | None:
        """One model call, or ``None`` when the token budget cannot fit it."""
        left = self.limits.token_budget - run.usage.total_tokens - estimate_prompt_tokens(messages)
        max_tokens = min(run.step_max_tokens, left)
        if max_tokens < MIN_STEP_TOKENS:
            return None
        options = make_options(ChatOptions(max_tokens=max_tokens, temperature=self.temperature))
        mark = time.perf_counter()
        response = await run.chat_model.chat(messages, options)
        run.usage = run.usage + response.usage
        run.model = response.model
        return response, ms_since(mark)

    def _format(self, run: _Run) -> ActionFormat:
        if self.action_format == "native":
            return NativeToolFormat(run.offered)
        if self.action_format == "json_staged":
            return StagedJsonFormat(run.offered, run.input_schemas)
        return JsonActionFormat(run.offered, run.input_schemas)

    def _finish_if_final(self, run: _Run, actions: Sequence[AgentAction], model_ms: float) -> bool:
        final = next((a for a in actions if a.is_final), None)
        if final is None:
            return False
        run.answer = final.answer_text()
        step = AgentStep(
            index=len(run.steps),
            tool=FINAL_ANSWER,
            input=dict(final.input),
            thought=final.thought,
            observation=run.answer,
            model_ms=model_ms,
        )
        run.add_step(step)
        return True

    def _record_invalid(
        self, run: _Run, response: ChatResponse, exc: ActionError, model_ms: float
    ) -> None:
        observation = f"Invalid action: {exc.message}. Reply with one JSON action."
        if self.action_format == "native":
            observation = f"Invalid reply: {exc.message}. Call a tool or answer."
        run.exchanges.append(Exchange(response, [(None, observation)]))
        step = AgentStep(
            index=len(run.steps),
            tool=INVALID_ACTION,
            input={"reply": clip(response.text, 200)},
            observation=observation,
            ok=False,
            model_ms=model_ms,
        )
        run.add_step(step)

    # -- tools -------------------------------------------------------------------------------
    async def _preload(self, run: _Run) -> None:
        if not self.preload_schema:
            return
        preload = await preload_database(
            self.tools,
            constrain_sql=self.constrain_sql,
            observation_chars=self.observation_chars,
            question=run.question,
        )
        for step in preload.steps:
            run.add_step(step.model_copy(update={"index": len(run.steps)}))
        run.hints += preload.hints
        run.input_schemas.update(preload.input_schemas)
        run.offered = [t for t in run.offered if t.name not in preload.hidden_tools]

    async def _act(self, run: _Run, action: AgentAction, model_ms: float) -> str:
        """Run one action and record its step; returns the observation shown to the model."""
        tool = self.tools.get(action.tool)
        tool_ms, ok = 0.0, False
        if action.problem:
            observation = f"Error: {action.problem}"
        elif tool is None:
            names = ", ".join([*(t.name for t in run.offered), FINAL_ANSWER])
            observation = f"Error: unknown tool {action.tool!r}. Choose one of: {names}."
        elif action.key() in run.seen:
            observation = f"Repeated action; its result was:\n{run.seen[action.key()]}"
            run.answer_next = True
        else:
            outcome = await observe(tool, action.input)
            ok, tool_ms = outcome.ok, outcome.tool_ms
            observation = render_observation(outcome.result, self.observation_chars)
            run.seen[action.key()] = observation
            if ok:
                run.last_result = (tool.name, observation)
        step = AgentStep(
            index=len(run.steps),
            tool=action.tool,
            input=dict(action.input),
            thought=action.thought,
            observation=observation,
            ok=ok,
            model_ms=model_ms,
            tool_ms=tool_ms,
        )
        run.add_step(step)
        return observation

    def _fallback_answer(self, run: _Run, stop: StopReason) -> str:
        limit = _LIMIT_WORDS[stop] or "step limit"
        if run.last_result is None:
            return f"I could not find the answer within the {limit}."
        tool, observation = run.last_result
        return (
            f"I could not finish within the {limit}. The last result ({tool}) was:\n"
            f"{clip(observation, 300)}"
        )
