"""Native tool calling: the OpenAI-compatible backend sends tool specs and reads ``tool_calls`` from
the fault-injecting server on 127.0.0.1, and the agent loop runs over it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.react import ReActAgent
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.llm.openai_compatible import OpenAICompatibleModel
from genai_factory.messages import ChatOptions, Message, ToolCall
from genai_factory.testing.fault_server import Fault, FaultServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer(model="tool-model") as running:
        yield running


@pytest.fixture
async def model(server: FaultServer) -> AsyncIterator[OpenAICompatibleModel]:
    backend = OpenAICompatibleModel(server.base_url, "tool-model")
    yield backend
    await backend.aclose()


async def test_backend_sends_tools_and_reads_tool_calls(
    server: FaultServer, model: OpenAICompatibleModel
) -> None:
    server.script(Fault.calls_tools(("calculator", {"expression": "2+2"}), ("sql_schema", "{}")))
    spec = {"type": "function", "function": {"name": "calculator", "parameters": {}}}
    response = await model.chat([Message.user("hi")], ChatOptions(tools=(spec,)))
    assert response.text == ""
    assert response.tool_calls == [
        ToolCall(id="call_0", name="calculator", arguments='{"expression": "2+2"}'),
        ToolCall(id="call_1", name="sql_schema", arguments="{}"),
    ]
    assert server.requests[0].body["tools"] == [spec]


async def test_backend_sends_tool_messages_back(
    server: FaultServer, model: OpenAICompatibleModel
) -> None:
    call = ToolCall(id="c1", name="calculator", arguments="{}")
    messages = [
        Message.user("q"),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content="4", tool_call_id="c1"),
    ]
    await model.chat(messages)
    sent = server.requests[0].body["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    ]
    assert sent[2] == {"role": "tool", "content": "4", "tool_call_id": "c1"}
    assert sent[0] == {"role": "user", "content": "q"}  # plain messages are unchanged
    assert "tools" not in server.requests[0].body


async def test_agent_runs_on_native_tool_calls(
    server: FaultServer, model: OpenAICompatibleModel, shop_db: Path
) -> None:
    server.script(
        Fault.calls_tools(("sql_query", {"sql": "SELECT count(*) FROM orders"})),
        Fault.calls_tools(("calculator", "{broken"), ("nope", {})),
        Fault.ok("There are 12 orders."),
    )
    tools = [SqlSchemaTool(str(shop_db)), SqlQueryTool(str(shop_db)), CalculatorTool()]
    agent = ReActAgent(model, tools, action_format="native")
    result = await agent.run("How many orders are there?")

    assert result.answer == "There are 12 orders." and result.stop_reason == "answer"
    assert [s.tool for s in result.steps] == [
        "sql_schema",
        "sql_query",
        "calculator",
        "nope",
        "final_answer",
    ]
    assert result.steps[1].ok and "12" in result.steps[1].observation
    assert not result.steps[2].ok and "not valid JSON" in result.steps[2].observation
    assert not result.steps[3].ok and "unknown tool" in result.steps[3].observation

    first = server.requests[0].body
    names = [t["function"]["name"] for t in first["tools"]]
    assert names == ["sql_query", "calculator"]  # the schema was read up front
    assert "Database tables:" in first["messages"][0]["content"]
    assert "response_format" not in first
    # Each tool call got its own tool message, with its id.
    third = server.requests[2].body["messages"]
    tool_messages = [m for m in third if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0", "call_0", "call_1"]
    assert "12" in tool_messages[0]["content"]
    assert json.loads(json.dumps(third))  # all serialisable


async def test_native_step_limit_asks_for_an_answer_without_tools(
    server: FaultServer, model: OpenAICompatibleModel
) -> None:
    server.script(
        Fault.calls_tools(("calculator", {"expression": "1+1"})),
        Fault.ok("It is 2."),
    )
    from genai_factory.agents.react import AgentLimits

    agent = ReActAgent(
        model, [CalculatorTool()], action_format="native", limits=AgentLimits(max_steps=1)
    )
    result = await agent.run("1+1?")
    assert result.stop_reason == "max_steps" and result.answer == "It is 2."
    assert "tools" not in server.requests[1].body
