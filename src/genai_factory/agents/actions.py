"""Agent actions: the JSON schema a model fills in, and strict parsing of what it wrote.

An action is ``{"thought": "...", "action": "<tool name or final_answer>", "input": {...}}``.
:func:`action_schema` builds the schema for constrained decoding (llama.cpp JSON-schema mode): one
``anyOf`` branch per tool whose ``action`` is a constant and whose ``input`` is that tool's own
argument schema, every string bounded by ``maxLength`` (a small model otherwise lets a string run
on until ``max_tokens``). :func:`parse_json_action` reads a reply with :func:`json.loads` and
checks its shape; nothing is ever evaluated. :func:`parse_tool_calls` reads native tool calls.
Both raise :class:`ActionError`, which the loop shows to the model as an observation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from genai_factory.agents.steps import FINAL_ANSWER
from genai_factory.agents.tools import Tool
from genai_factory.exceptions import ToolError
from genai_factory.messages import ToolCall

#: Longest thought the constrained schema lets a model write.
THOUGHT_CHARS = 100
#: Longest final answer the constrained schema lets a model write.
ANSWER_CHARS = 300
#: Cap on every other string in a constrained schema.
STRING_CHARS = 300

_DROPPED_KEYS = frozenset({"title", "description", "default", "examples"})
#: Characters a constrained free-text field may hold: no quote, backslash or control character, so
#: a small model cannot break the JSON (it wrote raw newlines into strings) or run into code.
SAFE_TEXT_CHARS = "A-Za-z0-9À-ž .,;:!?'()%$€£@/+*=<>_#&-"


def text_schema(max_chars: int, min_chars: int = 0) -> dict[str, Any]:
    """A bounded string of :data:`SAFE_TEXT_CHARS` (a ``pattern`` llama.cpp compiles)."""
    return {
        "type": "string",
        "pattern": f"^[{SAFE_TEXT_CHARS}]{{{min_chars},{max_chars}}}$",
        "maxLength": max_chars,
    }


class ActionError(ToolError):
    """The model's reply is not a valid action; the agent shows it the reason and goes on."""

    code = "invalid_action"


class AgentAction(BaseModel):
    """One action chosen by the model: a tool and its raw (not yet validated) input.

    ``call_id`` is the native tool call's id; ``problem`` is set when a native call could not be
    read (its observation is the problem, and the tool does not run).
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    input: dict[str, JsonValue] = Field(default_factory=dict)
    thought: str = ""
    call_id: str | None = None
    problem: str = ""

    @property
    def is_final(self) -> bool:
        return self.tool == FINAL_ANSWER

    def answer_text(self) -> str:
        """The answer of a ``final_answer`` action."""
        answer = self.input.get("answer")
        return answer.strip() if isinstance(answer, str) else ""

    def key(self) -> str:
        """A canonical text of tool and input, to spot a repeated action."""
        return f"{self.tool}:{json.dumps(self.input, sort_keys=True)}"


def bounded_schema(
    schema: Mapping[str, Any], max_chars: int = STRING_CHARS, *, safe_text: bool = False
) -> dict[str, Any]:
    """``schema`` without titles and descriptions, every string capped at ``max_chars``.

    ``safe_text`` also limits every free string to :data:`SAFE_TEXT_CHARS` (for constrained
    decoding with a small model).
    """
    definitions = schema.get("$defs", {})
    bounded: dict[str, Any] = _bound(dict(schema), max_chars, definitions, safe_text)
    return bounded


def _bound(node: Any, max_chars: int, definitions: Mapping[str, Any], safe: bool) -> Any:
    if isinstance(node, list):
        return [_bound(item, max_chars, definitions, safe) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:  # inline local references: the grammar converter needs no $defs then
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return _bound(definitions.get(name, {}), max_chars, definitions, safe)
    out = {
        key: _bound(value, max_chars, definitions, safe)
        for key, value in node.items()
        if key not in _DROPPED_KEYS and key != "$defs"
    }
    if out.get("type") == "string" and not {"enum", "const", "pattern"} & set(out):
        limit = min(int(out.get("maxLength", max_chars)), max_chars)
        out["maxLength"] = limit
        if safe:
            out.update(text_schema(limit, min(int(out.get("minLength", 0)), limit)))
    if out.get("type") == "object":
        out.setdefault("properties", {})
    return out


def final_answer_schema() -> dict[str, Any]:
    """The ``input`` of ``final_answer``: one bounded string."""
    return {
        "type": "object",
        "properties": {"answer": text_schema(ANSWER_CHARS, 1)},
        "required": ["answer"],
    }


def _branch(action: str, input_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "thought": text_schema(THOUGHT_CHARS),
            "action": {"const": action},
            "input": input_schema,
        },
        "required": ["thought", "action", "input"],
    }


def action_schema(
    tools: Sequence[Tool[Any]],
    *,
    final_only: bool = False,
    tool_only: bool = False,
    input_schemas: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON schema of one action over ``tools``; ``final_only``: a final answer only;
    ``tool_only``: no final answer (a first step must use a tool).

    ``input_schemas`` replaces the input schema of the tools it names (a SQL grammar, say).
    """
    overrides = input_schemas or {}
    branches = []
    for tool in [] if final_only else tools:
        schema = overrides.get(tool.name) or bounded_schema(
            tool.args_schema.model_json_schema(), safe_text=True
        )
        branches.append(_branch(tool.name, schema))
    if not (tool_only and branches):
        branches.append(_branch(FINAL_ANSWER, final_answer_schema()))
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def tool_specs(tools: Sequence[Tool[Any]]) -> tuple[dict[str, Any], ...]:
    """OpenAI-style function specs of ``tools`` for native tool calling."""
    return tuple(
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": bounded_schema(tool.args_schema.model_json_schema(), 4_000),
            },
        }
        for tool in tools
    )


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3].strip()
        if text.startswith("json"):
            text = text[4:]
    return text.strip()


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ActionError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ActionError(f"{what} must be a JSON object")
    return value


def parse_json_action(text: str) -> AgentAction:
    """The action in a model's reply: exactly one JSON object with ``action`` and ``input``.

    Raises:
        ActionError: not JSON, not an object, or a field of the wrong type or missing.
    """
    data = _json_object(_strip_fences(text), "the reply")
    unknown = set(data) - {"thought", "action", "input"}
    if unknown:
        raise ActionError(f"unexpected keys {sorted(unknown)}; use thought, action and input")
    action, raw_input, thought = data.get("action"), data.get("input", {}), data.get("thought", "")
    if not isinstance(action, str) or not action.strip():
        raise ActionError('"action" must name a tool or final_answer')
    if not isinstance(raw_input, dict):
        raise ActionError('"input" must be a JSON object')
    if not isinstance(thought, str):
        raise ActionError('"thought" must be a string')
    parsed = AgentAction(tool=action.strip(), input=raw_input, thought=thought.strip())
    if parsed.is_final and not parsed.answer_text():
        raise ActionError('final_answer needs {"answer": "..."} with the answer text')
    return parsed


def parse_tool_calls(calls: Sequence[ToolCall], text: str) -> list[AgentAction]:
    """The actions of a native tool-calling reply; no tool calls means ``text`` is the answer.

    A call whose arguments are not a JSON object becomes an action with ``problem`` set, so it
    still gets its own tool message (the API wants one answer per call id).

    Raises:
        ActionError: the reply has neither a tool call nor any text.
    """
    if not calls:
        if not text.strip():
            raise ActionError("the reply has neither a tool call nor an answer")
        return [AgentAction(tool=FINAL_ANSWER, input={"answer": text.strip()})]
    actions = []
    for call in calls:
        try:
            arguments = _json_object(call.arguments or "{}", f"the arguments of {call.name}")
        except ActionError as exc:
            actions.append(AgentAction(tool=call.name, call_id=call.id, problem=exc.message))
            continue
        actions.append(AgentAction(tool=call.name, input=arguments, call_id=call.id))
    return actions
