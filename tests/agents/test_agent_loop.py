"""The ReAct loop with a scripted FakeChatModel: a valid multi-step run, malformed actions, an
unknown tool, a tool timeout and a crashing tool, the step limit, the wall-clock timeout and the
token budget, repeated actions, refused SQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.react import AgentLimits, ReActAgent
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatOptions, ChatResponse, Message, Usage
from genai_factory.testing.fakes import FakeChatModel


def act(tool: str, thought: str = "", **tool_input: Any) -> str:
    return json.dumps({"thought": thought, "action": tool, "input": tool_input})


def final(answer: str) -> str:
    return act("final_answer", "I have the answer.", answer=answer)


class RecordingModel(FakeChatModel):
    """A FakeChatModel that also keeps the options of every call."""

    def __init__(self, replies: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        self.options: list[ChatOptions] = []

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        self.options.append(options or ChatOptions())
        return await super().chat(messages, options)


class SleepArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = 1.0


class SleepTool:
    name = "sleep"
    description = "Sleep a while."
    args_schema = SleepArgs
    timeout_s = 0.05

    async def run(self, args: SleepArgs) -> str:
        await asyncio.sleep(args.seconds)
        return "woke up"


class BrokenTool:
    name = "broken"
    description = "Always crashes."
    args_schema = SleepArgs
    timeout_s = 1.0

    async def run(self, args: SleepArgs) -> str:
        raise RuntimeError("secret internals")


@pytest.fixture
def sql_tools(shop_db: Path) -> list[Any]:
    return [SqlSchemaTool(str(shop_db)), SqlQueryTool(str(shop_db)), CalculatorTool()]


async def test_valid_multi_step_run(sql_tools: list[Any]) -> None:
    model = RecordingModel(
        [
            act("sql_query", "Count customers.", sql="SELECT count(*) AS n FROM customers"),
            act("calculator", "Double it.", expression="8 * 2"),
            final("There are 8 customers; twice that is 16."),
        ]
    )
    result = await ReActAgent(model, sql_tools).run("How many customers, doubled?")

    assert result.stop_reason == "answer" and not result.limit_hit
    assert result.answer == "There are 8 customers; twice that is 16."
    tools = [s.tool for s in result.steps]
    assert tools == ["sql_schema", "sql_query", "sql_query", "calculator", "final_answer"]
    schema, values, query, calc, answer = result.steps
    assert schema.automatic and schema.ok and "customers" in schema.observation
    assert values.automatic and values.ok and "DISTINCT status" in str(values.input["sql"])
    assert query.ok and not query.automatic and "\n8\n" in query.observation
    assert query.thought == "Count customers." and query.input == {
        "sql": "SELECT count(*) AS n FROM customers"
    }
    assert calc.ok and calc.observation == "16"
    assert answer.observation == result.answer
    assert [s.index for s in result.steps] == [0, 1, 2, 3, 4]
    assert all(s.model_ms >= 0 and s.tool_ms >= 0 for s in result.steps)
    assert result.usage.total_tokens > 0 and result.model == "fake-chat"
    # The schema was read once by the loop and put in the prompt; the model is not offered it.
    system = model.calls[0][0].content
    assert "Database tables:" in system and "table customers(" in system
    schema_json = json.dumps(model.options[0].json_schema)
    assert '"const": "sql_query"' in schema_json and '"const": "sql_schema"' not in schema_json
    # Each observation reaches the model on the next step.
    assert model.calls[1][-1].content.startswith("Observation: ")
    assert "16" in model.calls[2][-1].content


async def test_malformed_actions_are_observations_and_the_agent_recovers() -> None:
    model = FakeChatModel(
        [
            "I think the answer is 4",
            '{"action": 5, "input": {}}',
            '["not", "an", "object"]',
            '{"action": "calculator", "input": "2+2"}',
            '{"action": "final_answer", "input": {}}',
            '```json\n{"action": "calculator", "input": {"expression": "2+2"}}\n```',
            final("4"),
        ]
    )
    result = await ReActAgent(model, [CalculatorTool()], limits=AgentLimits(max_steps=8)).run(
        "What is 2+2?"
    )
    assert result.stop_reason == "answer" and result.answer == "4"
    tools = [s.tool for s in result.steps]
    assert tools == ["invalid"] * 5 + ["calculator", "final_answer"]
    assert all(not s.ok and s.observation.startswith("Invalid action") for s in result.steps[:5])
    assert "not valid JSON" in result.steps[0].observation
    assert result.steps[0].input == {"reply": "I think the answer is 4"}
    # The model saw its bad reply and the reason before its next try.
    second_call = model.calls[1]
    assert second_call[-2].content == "I think the answer is 4"
    assert "not valid JSON" in second_call[-1].content


async def test_unknown_tool_is_an_observation() -> None:
    model = FakeChatModel([act("rm_rf", path="/"), final("done")])
    result = await ReActAgent(model, [CalculatorTool()]).run("clean up")
    step = result.steps[0]
    assert step.tool == "rm_rf" and not step.ok
    assert "unknown tool 'rm_rf'" in step.observation and "calculator" in step.observation
    assert result.answer == "done" and result.stop_reason == "answer"


async def test_tool_timeout_and_crash_are_observations() -> None:
    model = FakeChatModel([act("sleep", seconds=5), act("broken"), final("gave up")])
    result = await ReActAgent(model, [SleepTool(), BrokenTool()]).run("nap")
    sleep, broken, _ = result.steps
    assert not sleep.ok and "did not finish within 0.05 s" in sleep.observation
    assert sleep.tool_ms < 1000
    assert not broken.ok and broken.observation == "Error: broken failed (RuntimeError)"
    assert "secret" not in broken.observation
    assert result.answer == "gave up"


async def test_invalid_arguments_are_an_observation() -> None:
    model = FakeChatModel([act("calculator", expr="1+1"), final("ok")])
    result = await ReActAgent(model, [CalculatorTool()]).run("sum")
    assert not result.steps[0].ok
    assert "invalid arguments for calculator" in result.steps[0].observation


async def test_refused_sql_is_an_observation_and_nothing_is_written(shop_db: Path) -> None:
    tools = [SqlQueryTool(str(shop_db))]
    model = FakeChatModel([act("sql_query", sql="DELETE FROM customers"), final("refused")])
    result = await ReActAgent(model, tools).run("delete everyone")
    step = result.steps[0]
    assert not step.ok and step.observation.startswith("Error: ")
    with sqlite3.connect(shop_db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 8


async def test_step_limit_ends_with_a_final_only_call() -> None:
    model = RecordingModel(
        [
            act("calculator", expression="1+1"),
            act("calculator", expression="2+2"),
            final("The results were 2 and 4."),
        ]
    )
    agent = ReActAgent(model, [CalculatorTool()], limits=AgentLimits(max_steps=2))
    result = await agent.run("add things")
    assert result.stop_reason == "max_steps" and result.limit_hit
    assert result.answer == "The results were 2 and 4."
    assert len(model.calls) == 3
    last = model.options[-1].json_schema
    assert last is not None and "anyOf" not in last  # only final_answer is allowed now
    assert last["properties"]["action"] == {"const": "final_answer"}
    assert "No steps are left" in model.calls[-1][-1].content


async def test_step_limit_without_a_final_answer_returns_the_last_result() -> None:
    model = FakeChatModel(
        [act("calculator", expression="6*7"), act("calculator", expression="1/0"), "garbage"]
    )
    agent = ReActAgent(model, [CalculatorTool()], limits=AgentLimits(max_steps=2))
    result = await agent.run("compute")
    assert result.stop_reason == "max_steps" and result.limit_hit
    assert "step limit" in result.answer and "42" in result.answer
    assert result.steps[-1].tool == "invalid"


async def test_repeated_action_is_not_run_again() -> None:
    calls = 0

    class CountingCalculator(CalculatorTool):
        async def run(self, args: Any) -> str:
            nonlocal calls
            calls += 1
            return await super().run(args)

    same = act("calculator", expression="3*3")
    model = RecordingModel([same, same, final("9")])
    result = await ReActAgent(model, [CountingCalculator()]).run("square 3")
    assert calls == 1
    assert result.steps[1].observation == "Repeated action; its result was:\n9"
    assert not result.steps[1].ok
    assert result.answer == "9" and result.stop_reason == "answer"
    # The model is stuck: its next call may only answer.
    assert "anyOf" in (model.options[1].json_schema or {})
    assert (model.options[2].json_schema or {})["properties"]["action"] == {"const": "final_answer"}


class SlowModel(ChatModel):
    name = "slow"

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        await asyncio.sleep(5)
        return ChatResponse(text=final("late"), model=self.name)


async def test_wall_clock_timeout_returns_a_flagged_answer() -> None:
    agent = ReActAgent(SlowModel(), [CalculatorTool()], limits=AgentLimits(timeout_s=0.1))
    result = await asyncio.wait_for(agent.run("anything"), 2)
    assert result.stop_reason == "timeout" and result.limit_hit
    assert "time limit" in result.answer
    assert result.latency_ms < 2000


async def test_timeout_keeps_the_steps_already_taken() -> None:
    class FirstFastModel(SlowModel):
        calls = 0

        async def chat(
            self, messages: Sequence[Message], options: ChatOptions | None = None
        ) -> ChatResponse:
            self.calls += 1
            if self.calls == 1:
                return ChatResponse(text=act("calculator", expression="5+5"), model=self.name)
            return await super().chat(messages, options)

    agent = ReActAgent(FirstFastModel(), [CalculatorTool()], limits=AgentLimits(timeout_s=0.3))
    result = await agent.run("add")
    assert result.stop_reason == "timeout"
    assert [s.tool for s in result.steps] == ["calculator"]
    assert "10" in result.answer


async def test_token_budget_stops_before_a_call_that_cannot_fit() -> None:
    class Costly(FakeChatModel):
        async def chat(
            self, messages: Sequence[Message], options: ChatOptions | None = None
        ) -> ChatResponse:
            response = await super().chat(messages, options)
            return response.model_copy(
                update={"usage": Usage(prompt_tokens=500, completion_tokens=20)}
            )

    model = Costly([act("calculator", expression="1+2"), final("3")])
    agent = ReActAgent(model, [CalculatorTool()], limits=AgentLimits(token_budget=600))
    result = await agent.run("add")
    assert result.stop_reason == "token_budget" and result.limit_hit
    assert len(model.calls) == 1 and result.usage.total_tokens == 520
    assert "token budget" in result.answer and "3" in result.answer


async def test_tiny_budget_makes_no_call_at_all() -> None:
    model = FakeChatModel([final("never")])
    agent = ReActAgent(model, [CalculatorTool()], limits=AgentLimits(token_budget=50))
    result = await agent.run("hello")
    assert model.calls == [] and result.stop_reason == "token_budget"
    assert result.answer == "I could not find the answer within the token budget."


async def test_step_max_tokens_caps_each_call() -> None:
    model = RecordingModel([final("ok")])
    agent = ReActAgent(model, [CalculatorTool()], limits=AgentLimits(step_max_tokens=77))
    await agent.run("hi")
    assert model.options[0].max_tokens == 77 and model.options[0].temperature == 0.0


def test_tool_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        ReActAgent(FakeChatModel(), [CalculatorTool(), CalculatorTool()])


# -- two-stage JSON actions (the embedded model's format) ------------------------------------
def choose(tool: str) -> str:
    return json.dumps({"thought": f"Use {tool}.", "action": tool})


async def test_staged_run_chooses_then_fills_each_action(sql_tools: list[Any]) -> None:
    model = RecordingModel(
        [
            choose("sql_query"),
            json.dumps({"sql": "SELECT count(*) FROM orders WHERE status = 'cancelled'"}),
            choose("final_answer"),
            "1 order was cancelled.\n",
        ]
    )
    agent = ReActAgent(model, sql_tools, action_format="json_staged")
    result = await agent.run("How many orders were cancelled?")

    assert result.answer == "1 order was cancelled." and result.stop_reason == "answer"
    assert [s.tool for s in result.steps] == [
        "sql_schema",
        "sql_query",
        "sql_query",
        "final_answer",
    ]
    assert "\n1\n" in result.steps[2].observation
    choose_schema, sql_schema, final_schema, _ = (o.json_schema or {} for o in model.options)
    # The first action must be a tool; once a tool has run, the answer may come.
    assert choose_schema["properties"]["action"]["enum"] == ["sql_query", "calculator"]
    assert final_schema["properties"]["action"]["enum"] == [
        "sql_query",
        "calculator",
        "final_answer",
    ]
    assert set(choose_schema["properties"]) == {"action"}
    # The SQL is written under the grammar of the real tables, after a made-up example.
    pattern = sql_schema["properties"]["sql"]["pattern"]
    assert "FROM orders" in pattern and "books" not in pattern
    assert "status (=|!=) '(cancelled)'" in pattern  # the known value the question names
    hints = model.calls[1][0].content  # the prompt still lists them all
    assert "orders.status: delivered, cancelled, shipped, placed" in hints
    sql_prompt = model.calls[1]
    assert "Database tables:" in sql_prompt[0].content and "FROM books" in sql_prompt[2].content
    assert sql_prompt[-1].content == "How many orders were cancelled?"
    # The answer is written from the results alone: no example to copy.
    answer_prompt = model.calls[3]
    assert "Tolkien" not in " ".join(m.content for m in answer_prompt)
    assert "status = 'cancelled'" in answer_prompt[-1].content
    answer_options = model.options[3]
    assert answer_options.json_schema is None and answer_options.stop == ("\n\n",)
    assert answer_options.max_tokens <= 100


async def test_staged_invalid_input_is_an_observation(sql_tools: list[Any]) -> None:
    model = FakeChatModel(
        [
            choose("calculator"),
            "2+2",
            choose("calculator"),
            json.dumps({"expression": "2+2"}),
            choose("final_answer"),
            "4",
        ]
    )
    agent = ReActAgent(model, sql_tools[2:], action_format="json_staged")
    result = await agent.run("2+2?")
    assert [s.tool for s in result.steps] == ["invalid", "calculator", "final_answer"]
    assert "input of calculator is not valid JSON" in result.steps[0].observation
    assert result.answer == "4"


async def test_staged_step_limit_fills_a_final_answer() -> None:
    model = RecordingModel(
        [
            choose("calculator"),
            json.dumps({"expression": "6*7"}),
            choose("final_answer"),
            " 42 ",
        ]
    )
    agent = ReActAgent(
        model, [CalculatorTool()], action_format="json_staged", limits=AgentLimits(max_steps=1)
    )
    result = await agent.run("6*7?")
    assert result.stop_reason == "max_steps" and result.answer == "42"
    assert (model.options[2].json_schema or {})["properties"]["action"]["enum"] == ["final_answer"]
