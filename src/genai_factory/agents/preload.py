"""Read the database before the agent's first model call: its tables, and the values of its small
text columns.

With ``sql_schema`` and ``sql_query`` among the tools, :func:`preload_database` runs ``sql_schema``
(the tables go into the prompt, and ``sql_schema`` is no longer offered: the model would only call
it again) and, when the SQL grammar is wanted, one ``sql_query`` for the distinct values of the
text columns (see :mod:`~genai_factory.agents.sql_grammar`), which constrain the SQL grammar and
are listed in the prompt too; given the question, the grammar's other literals are copied from it.
Both are real tool calls, recorded as ``automatic`` steps. Anything
that fails just leaves its part out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genai_factory.agents.observe import observe
from genai_factory.agents.prompting import clip, render_observation
from genai_factory.agents.sql_grammar import known_values, sql_input_schema, values_query
from genai_factory.agents.sql_results import SchemaInfo, SQLResult
from genai_factory.agents.steps import AgentStep
from genai_factory.agents.tools import Tool

SCHEMA_TOOL = "sql_schema"
QUERY_TOOL = "sql_query"


@dataclass
class Preload:
    """What the agent learned before its first step."""

    steps: list[AgentStep] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    hidden_tools: set[str] = field(default_factory=set)
    input_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)


async def preload_database(
    tools: Mapping[str, Tool[Any]],
    *,
    constrain_sql: bool,
    observation_chars: int,
    question: str | None = None,
) -> Preload:
    """Read the schema (and known values) when both SQL tools are present; else nothing.

    ``question``: the grammar's literals other than known values are copied from it (see
    :func:`~genai_factory.agents.sql_grammar.question_literals`); ``None`` leaves them free.
    """
    preload = Preload()
    if SCHEMA_TOOL not in tools or QUERY_TOOL not in tools:
        return preload
    outcome = await observe(tools[SCHEMA_TOOL], {})
    text = render_observation(outcome.result, 4 * observation_chars)
    preload.steps.append(_step(SCHEMA_TOOL, {}, clip(text, observation_chars), outcome))
    if not outcome.ok or not isinstance(outcome.result, SchemaInfo):
        return preload
    schema = outcome.result
    preload.hints.append("Database tables:\n" + text)
    preload.hidden_tools.add(SCHEMA_TOOL)
    if not constrain_sql:
        return preload
    values: dict[tuple[str, str], list[str]] = {}
    sql = values_query(schema)
    if sql is not None:
        found = await observe(tools[QUERY_TOOL], {"sql": sql})
        shown = render_observation(found.result, observation_chars)
        preload.steps.append(_step(QUERY_TOOL, {"sql": sql}, shown, found))
        if found.ok and isinstance(found.result, SQLResult):
            values = known_values(found.result)
    if values:
        lines = [
            f"{table}.{column}: {', '.join(known)}" for (table, column), known in values.items()
        ]
        preload.hints.append("Values of text columns:\n" + "\n".join(lines))
    grammar = sql_input_schema(schema, values, question)
    if grammar is not None:
        preload.input_schemas[QUERY_TOOL] = grammar
    return preload


def _step(tool: str, tool_input: dict[str, Any], observation: str, outcome: Any) -> AgentStep:
    return AgentStep(
        index=0,
        tool=tool,
        input=tool_input,
        thought="Read the database before the first step.",
        observation=observation,
        ok=outcome.ok,
        automatic=True,
        tool_ms=outcome.tool_ms,
    )
