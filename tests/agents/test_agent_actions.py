"""Strict action parsing, the constrained action schema (bounded strings, llama.cpp grammar) and
native tool calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genai_factory.agents.actions import (
    ActionError,
    action_schema,
    bounded_schema,
    parse_json_action,
    parse_tool_calls,
    tool_specs,
)
from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.knowledge import KnowledgeSearchTool
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.messages import ToolCall
from genai_factory.testing.fakes import FakeEmbedder


def all_tools() -> list[Any]:
    return [
        SqlSchemaTool("x.db"),
        SqlQueryTool("x.db"),
        CalculatorTool(),
        KnowledgeSearchTool(FakeEmbedder()),  # type: ignore[arg-type]
    ]


def strings(node: Any) -> list[dict[str, Any]]:
    """Every string-typed sub-schema."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "string":
            found.append(node)
        for value in node.values():
            found += strings(value)
    elif isinstance(node, list):
        for item in node:
            found += strings(item)
    return found


def test_parse_accepts_a_well_formed_action() -> None:
    action = parse_json_action(
        ' {"thought": "t", "action": "sql_query", "input": {"sql": "SELECT 1"}} '
    )
    assert (action.tool, action.input, action.thought) == ("sql_query", {"sql": "SELECT 1"}, "t")
    assert not action.is_final
    fenced = parse_json_action(
        '```json\n{"action": "final_answer", "input": {"answer": "42"}}\n```'
    )
    assert fenced.is_final and fenced.answer_text() == "42"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "not valid JSON"),
        ("SELECT 1", "not valid JSON"),
        ('{"action": "x", "input": {}} trailing', "not valid JSON"),
        ('{"action": "x", "input": {}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"final_answer"', "must be a JSON object"),
        ('{"input": {}}', '"action" must name'),
        ('{"action": "", "input": {}}', '"action" must name'),
        ('{"action": ["a"], "input": {}}', '"action" must name'),
        ('{"action": "calculator", "input": "1+1"}', '"input" must be a JSON object'),
        ('{"action": "calculator", "input": {}, "thought": 3}', '"thought" must be a string'),
        ('{"action": "calculator", "input": {}, "code": "import os"}', "unexpected keys"),
        ('{"action": "final_answer", "input": {"answer": "  "}}', "final_answer needs"),
        ('{"action": "final_answer", "input": {"text": "hi"}}', "final_answer needs"),
        ("[" * 100_000, "not valid JSON"),
        ("__import__('os').system('id')", "not valid JSON"),
    ],
)
def test_parse_rejects_anything_else(reply: str, reason: str) -> None:
    with pytest.raises(ActionError, match=reason):
        parse_json_action(reply)


def test_action_schema_bounds_every_string_and_names_each_tool() -> None:
    schema = action_schema(all_tools())
    consts = [b["properties"]["action"]["const"] for b in schema["anyOf"]]
    assert consts == ["sql_schema", "sql_query", "calculator", "knowledge_search", "final_answer"]
    assert all("maxLength" in s for s in strings(schema))
    assert max(s["maxLength"] for s in strings(schema)) <= 300
    sql_branch = schema["anyOf"][1]["properties"]["input"]
    assert sql_branch["required"] == ["sql"] and sql_branch["additionalProperties"] is False
    assert "title" not in json.dumps(schema) and "description" not in json.dumps(schema)


def test_final_only_schema_allows_only_an_answer() -> None:
    schema = action_schema(all_tools(), final_only=True)
    assert schema["properties"]["action"] == {"const": "final_answer"}
    assert schema["properties"]["input"]["required"] == ["answer"]


def test_bounded_schema_inlines_references() -> None:
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}},
        "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    bounded = bounded_schema(schema, 50)
    assert "$defs" not in bounded
    assert bounded["properties"]["item"]["properties"]["name"] == {
        "type": "string",
        "maxLength": 50,
    }


def test_action_schema_compiles_to_a_llama_cpp_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(action_schema(all_tools())))
    assert "root ::=" in grammar


def test_tool_specs_are_openai_functions() -> None:
    specs = tool_specs([CalculatorTool()])
    function = specs[0]["function"]
    assert specs[0]["type"] == "function" and function["name"] == "calculator"
    assert function["parameters"]["properties"]["expression"]["type"] == "string"
    assert function["description"].startswith("Compute")


def test_native_tool_calls_become_actions() -> None:
    calls = [
        ToolCall(id="a", name="calculator", arguments='{"expression": "1+1"}'),
        ToolCall(id="b", name="calculator", arguments="{not json"),
    ]
    good, bad = parse_tool_calls(calls, "")
    assert (good.tool, good.input, good.call_id, good.problem) == (
        "calculator",
        {"expression": "1+1"},
        "a",
        "",
    )
    assert bad.call_id == "b" and "not valid JSON" in bad.problem
    (answer,) = parse_tool_calls([], " It is 2. ")
    assert answer.is_final and answer.answer_text() == "It is 2."
    with pytest.raises(ActionError, match="neither a tool call nor an answer"):
        parse_tool_calls([], "  ")
