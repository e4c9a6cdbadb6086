"""The agent's prompts: a short system prompt, one worked example, and observations as text.

Small models follow a pattern far better than an instruction, so the JSON-action prompt is brief
(the tools with one line each, the hints such as the database tables) and is followed by one worked
example as real chat turns: a question, an action, an observation, a final answer. The example is
chosen by the tools on offer (SQL, then calculator, then knowledge search).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from genai_factory.agents.steps import FINAL_ANSWER
from genai_factory.agents.tools import Tool
from genai_factory.messages import Message

JSON_SYSTEM_PROMPT = (
    "You answer the question by calling tools. Reply with one JSON action: "
    '{"thought": "...", "action": "<tool>", "input": {...}}. '
    "When the observation answers the question, reply with final_answer."
)
NATIVE_SYSTEM_PROMPT = (
    "You answer the user's question. Call the tools when they help; never guess data you can "
    "look up. When you know the answer, reply with it in one or two sentences without a tool call."
)
OBSERVATION_PREFIX = "Observation: "

#: One worked example per kind of tool: (question, input, observation, answer). The SQL one uses
#: a made-up ``books`` table on purpose: a small model copies an example, and under the SQL grammar
#: it can only copy the shape of the query, never a table or column that does not exist.
EXAMPLES: dict[str, tuple[str, dict[str, str], str, str]] = {
    "sql_query": (
        "How many books did Tolkien write?",
        {"sql": "SELECT count(*) FROM books WHERE author = 'Tolkien'"},
        "count(*)\n--------\n5\n(1 row)",
        "Tolkien wrote 5 books.",
    ),
    "calculator": (
        "What is 12 percent of 250?",
        {"expression": "250 * 12 / 100"},
        "30",
        "12 percent of 250 is 30.",
    ),
    "knowledge_search": (
        "How do I change the port?",
        {"query": "change the port"},
        "[1] Settings (configuration.md, score 0.71): Set service.port or GENAI_SERVICE__PORT.",
        "Set service.port (or GENAI_SERVICE__PORT).",
    ),
}

#: Question → SQL pairs over the made-up ``books`` table, one per query shape, shown with the SQL
#: tool: a small model picks the shape closest to the question instead of one fixed example.
SQL_PATTERNS = (
    "SQL examples for a table books(id, title, author, price):",
    "How many books are there? SELECT count(*) FROM books",
    "How many books cost more than 20? SELECT count(*) FROM books WHERE price > 20",
    "What is the price of Dune? SELECT price FROM books WHERE title = 'Dune'",
    "What is the most expensive book? SELECT title FROM books ORDER BY price DESC LIMIT 1",
    "What is the average price of a book? SELECT avg(price) FROM books",
)


def render_observation(result: str | BaseModel, max_chars: int) -> str:
    """A tool's result as text (``to_text()`` when it has one), cut to ``max_chars``."""
    if isinstance(result, str):
        text = result
    else:
        to_text = getattr(result, "to_text", None)
        text = str(to_text()) if callable(to_text) else result.model_dump_json()
    return clip(text, max_chars)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` with a visible mark."""
    text = text.strip()
    return text if len(text) <= max_chars else text[: max_chars - 13].rstrip() + " …(truncated)"


def _input_pattern(tool: Tool[Any]) -> str:
    fields = tool.args_schema.model_json_schema().get("properties", {})
    return json.dumps({name: "..." for name in fields})


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + (dot.strip() or "")


def json_system_prompt(tools: Sequence[Tool[Any]], hints: Sequence[str] = ()) -> str:
    """The system prompt of the JSON-action format: rules, one line per tool, then ``hints``."""
    lines = [JSON_SYSTEM_PROMPT, "Tools:"]
    lines += [f"{t.name} {_input_pattern(t)}: {_first_sentence(t.description)}" for t in tools]
    lines.append(f'{FINAL_ANSWER} {{"answer": "..."}}: the answer to the question.')
    patterns = SQL_PATTERNS if any(t.name == "sql_query" for t in tools) else ()
    return "\n".join([*lines, *hints, *patterns])


def action_text(tool: str, tool_input: dict[str, Any], thought: str) -> str:
    """An action as the model is asked to write it."""
    return json.dumps({"thought": thought, "action": tool, "input": tool_input})


def worked_example(tools: Sequence[Tool[Any]]) -> list[Message]:
    """One question solved with the first tool that has an example, as chat turns."""
    names = {tool.name for tool in tools}
    chosen = next((name for name in EXAMPLES if name in names), None)
    if chosen is None:
        return []
    question, tool_input, observation, answer = EXAMPLES[chosen]
    return [
        Message.user(question),
        Message.assistant(action_text(chosen, tool_input, f"Use {chosen}.")),
        Message.user(OBSERVATION_PREFIX + observation),
        Message.assistant(action_text(FINAL_ANSWER, {"answer": answer}, "I have the answer.")),
    ]
