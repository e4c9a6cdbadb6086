"""Two-stage JSON actions for very small models: first choose the action, then write its input.

Measured with SmolLM2-135M (``bench/agent_shop.py``): in one JSON action the model copies its worked
example — the example's SQL and, worse, the example's final answer instead of the observation. So
this format splits every step in two short, constrained calls:

1. **choose**: ``{"action": <enum of tools and final_answer>}`` over the transcript (no free-text
   thought: the 135M model wandered off in it, wrote raw newlines, and chose worse after it);
2. **fill**: a focused prompt for that action alone, with its own schema:

   * ``sql_query``: the tables, one SQL example picked by word overlap from a bank over a made-up
     ``books`` table, and the SQL grammar of :mod:`~genai_factory.agents.sql_grammar` (the model
     can copy the shape of the example but only name real tables and columns);
   * ``calculator``: an expression made of digits and operators only;
   * ``final_answer``: the question and the observations, no example to copy, answered in plain
     text (at most :data:`ANSWER_TOKENS` tokens, cut at a blank line): under a JSON schema the
     model began its answer with stray punctuation and wandered off;
   * any other tool: its own bounded argument schema.

The loop in :mod:`~genai_factory.agents.react` makes both calls (each within the token budget):
:meth:`StagedJsonFormat.input_messages` and :meth:`~StagedJsonFormat.input_options` build the
second one, :meth:`~StagedJsonFormat.parse_input` reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from genai_factory.agents.actions import (
    ANSWER_CHARS,
    ActionError,
    AgentAction,
    bounded_schema,
)
from genai_factory.agents.formats import Exchange, FormatName
from genai_factory.agents.prompting import EXAMPLES, OBSERVATION_PREFIX, clip
from genai_factory.agents.steps import FINAL_ANSWER
from genai_factory.agents.tools import Tool
from genai_factory.messages import ChatOptions, ChatResponse, Message

CHOOSE_PROMPT = (
    'You answer the question with tools. Reply with the next action as JSON: {"action": "<tool>"}. '
    "When an observation answers the question, the action is final_answer."
)
SQL_PROMPT = "Write one SQLite SELECT that answers the question."
ANSWER_PROMPT = (
    "Answer the question in one short sentence from the results. "
    "Copy numbers and names exactly as the results show them."
)
CALCULATOR_PROMPT = "Write the arithmetic expression that answers the question."
#: Question → SQL over a made-up ``books`` table, one per common query shape.
SQL_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("How many books are there?", "SELECT count(*) FROM books"),
    (
        "How many books were written by Tolkien?",
        "SELECT count(*) FROM books WHERE author = 'Tolkien'",
    ),
    ("What is the price of Dune?", "SELECT price FROM books WHERE title = 'Dune'"),
    ("What is the most expensive book?", "SELECT title FROM books ORDER BY price DESC LIMIT 1"),
    ("What is the cheapest book?", "SELECT title FROM books ORDER BY price LIMIT 1"),
    ("What is the average price of a book?", "SELECT avg(price) FROM books"),
    ("What is the total number of pages of all books?", "SELECT sum(pages) FROM books"),
    ("Which author wrote Dune?", "SELECT author FROM books WHERE title = 'Dune'"),
    ("How many different authors are there?", "SELECT count(DISTINCT author) FROM books"),
)
#: The final answer is plain text, bounded by tokens and cut at a blank line.
ANSWER_TOKENS = 100
ANSWER_STOP = ("\n\n",)
EXPRESSION_PATTERN = r"^[0-9][0-9+*/(). -]{0,99}$|^[(-][0-9+*/(). -]{1,99}$"
_WORDS = re.compile(r"[a-z]+")


def pick_sql_example(question: str) -> tuple[str, str]:
    """The example whose question shares the most words with ``question`` (Jaccard)."""
    words = set(_WORDS.findall(question.lower()))

    def overlap(example: tuple[str, str]) -> float:
        other = set(_WORDS.findall(example[0].lower()))
        return len(words & other) / len(words | other)

    return max(SQL_EXAMPLES, key=overlap)


def _choice(action: str) -> str:
    return json.dumps({"action": action})


class StagedJsonFormat:
    """Choose the action in one constrained call, then write its input in a second one."""

    name: FormatName = "json_staged"

    def __init__(
        self,
        tools: Sequence[Tool[Any]],
        input_schemas: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.input_schemas = dict(input_schemas or {})

    # -- stage 1: choose ---------------------------------------------------------------------
    def messages(
        self, question: str, hints: Sequence[str], exchanges: Sequence[Exchange], *, final: bool
    ) -> list[Message]:
        lines = [CHOOSE_PROMPT, "Tools:"]
        lines += [f"{t.name}: {t.description.split('. ')[0]}" for t in self.tools.values()]
        lines.append(f"{FINAL_ANSWER}: give the answer.")
        messages = [Message.system("\n".join([*lines, *hints])), *self._example()]
        messages.append(Message.user(question))
        for exchange in exchanges:
            for action, observation in exchange.outcomes:
                shown = _choice(action.tool) if action else exchange.response.text
                messages.append(Message.assistant(clip(shown, 200) or "(empty reply)"))
                messages.append(Message.user(OBSERVATION_PREFIX + observation))
        return messages

    def _example(self) -> list[Message]:
        chosen = next((name for name in EXAMPLES if name in self.tools), None)
        if chosen is None:
            return []
        question, _, observation, _ = EXAMPLES[chosen]
        return [
            Message.user(question),
            Message.assistant(_choice(chosen)),
            Message.user(OBSERVATION_PREFIX + observation),
            Message.assistant(_choice(FINAL_ANSWER)),
        ]

    def options(self, base: ChatOptions, *, final: bool, tool_only: bool = False) -> ChatOptions:
        names = [FINAL_ANSWER] if final else [*self.tools, FINAL_ANSWER]
        if tool_only and not final and self.tools:
            names.remove(FINAL_ANSWER)
        schema = {
            "type": "object",
            "properties": {"action": {"type": "string", "enum": names}},
            "required": ["action"],
        }
        return base.model_copy(update={"json_schema": schema, "tools": None})

    def parse(self, response: ChatResponse) -> list[AgentAction]:
        try:
            data = json.loads(response.text)
        except (json.JSONDecodeError, RecursionError):
            raise ActionError("the reply is not valid JSON") from None
        action = data.get("action") if isinstance(data, dict) else None
        if not isinstance(action, str) or not action:
            raise ActionError('the reply must be {"action": "<tool>"}')
        return [AgentAction(tool=action)]

    # -- stage 2: fill -----------------------------------------------------------------------
    def input_messages(
        self,
        action: AgentAction,
        question: str,
        hints: Sequence[str],
        exchanges: Sequence[Exchange],
    ) -> list[Message]:
        """The focused prompt for the input of ``action``."""
        if action.tool == FINAL_ANSWER:
            results = _results(exchanges) or "(no results)"
            prompt = f"Question: {question}\nResults:\n{results}"
            return [Message.system(ANSWER_PROMPT), Message.user(prompt)]
        if action.tool == "sql_query":
            example_question, example_sql = pick_sql_example(question)
            return [
                Message.system("\n".join([SQL_PROMPT, *hints])),
                Message.user(example_question),
                Message.assistant(json.dumps({"sql": example_sql})),
                Message.user(question),
            ]
        if action.tool == "calculator":
            return _calculator_messages(question, exchanges)
        tool = self.tools[action.tool]
        results = _results(exchanges)
        user = f"Question: {question}" + (f"\nResults so far:\n{results}" if results else "")
        system = f"Write the input of the tool {tool.name}: {tool.description}"
        return [Message.system(system), Message.user(user)]

    def input_options(self, action: AgentAction, base: ChatOptions) -> ChatOptions:
        """``base`` with the schema of the input of ``action``."""
        if action.tool == FINAL_ANSWER:  # plain text: the model copied JSON-shaped examples
            max_tokens = min(base.max_tokens, ANSWER_TOKENS)
            return base.model_copy(
                update={
                    "json_schema": None,
                    "tools": None,
                    "max_tokens": max_tokens,
                    "stop": ANSWER_STOP,
                }
            )
        if action.tool == "sql_query":
            schema = self.input_schemas.get("sql_query") or _object("sql", {"maxLength": 300})
        elif action.tool == "calculator":
            schema = _object("expression", {"pattern": EXPRESSION_PATTERN, "maxLength": 100})
        else:
            args = self.tools[action.tool].args_schema.model_json_schema()
            schema = bounded_schema(args, 200, safe_text=True)
        return base.model_copy(update={"json_schema": schema, "tools": None})

    def parse_input(self, action: AgentAction, response: ChatResponse) -> AgentAction:
        """``action`` with the input the model wrote (or its answer, for ``final_answer``)."""
        if action.tool == FINAL_ANSWER:
            answer = clip(response.text, ANSWER_CHARS)
            if not answer:
                raise ActionError("the answer is empty")
            return action.model_copy(update={"input": {"answer": answer}})
        try:
            data = json.loads(response.text)
        except (json.JSONDecodeError, RecursionError):
            raise ActionError(f"the input of {action.tool} is not valid JSON") from None
        if not isinstance(data, dict):
            raise ActionError(f"the input of {action.tool} must be a JSON object")
        return action.model_copy(update={"input": data})


def _object(field: str, constraints: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {field: {"type": "string", **constraints}},
        "required": [field],
    }


def _results(exchanges: Sequence[Exchange]) -> str:
    lines = []
    for exchange in exchanges:
        for action, observation in exchange.outcomes:
            if action is None:
                continue
            shown = json.dumps(dict(action.input)) if action.input else ""
            lines.append(f"{action.tool} {shown}:\n{observation}".strip())
    return "\n".join(lines)


def _calculator_messages(question: str, exchanges: Sequence[Exchange]) -> list[Message]:
    example_question, example_input, _, _ = EXAMPLES["calculator"]
    results = _results(exchanges)
    user = question + (f"\nResults so far:\n{results}" if results else "")
    return [
        Message.system(CALCULATOR_PROMPT),
        Message.user(example_question),
        Message.assistant(json.dumps(example_input)),
        Message.user(user),
    ]
