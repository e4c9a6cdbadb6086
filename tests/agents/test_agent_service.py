"""The agent route through the assistant and the HTTP API, with the fake model: ``mode: agent``,
automatic routing, steps and limit flags in the answer, and a disabled agent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.agents.react import ReActAgent
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.assistant.assembly import assemble
from genai_factory.assistant.service import AssistantService
from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.observability.traced_model import TracedModel
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder


def act(tool: str, **tool_input: Any) -> str:
    return json.dumps({"thought": f"Use {tool}.", "action": tool, "input": tool_input})


COUNT = act("sql_query", sql="SELECT count(*) FROM customers")
FINAL = act("final_answer", answer="There are 8 customers.")


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.02)


def without_guards(settings: Settings) -> Settings:
    """These tests are about routing and the agent; the guards have their own tests."""
    return settings.model_copy(
        update={"safety": settings.safety.model_copy(update={"enabled": False})}
    )


@pytest.fixture
def agent_settings(fake_settings: Settings, shop_db: Path) -> Settings:
    return without_guards(
        fake_settings.model_copy(
            update={"agents": fake_settings.agents.model_copy(update={"database": str(shop_db)})}
        )
    )


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def client(agent_settings: Settings, model: FakeChatModel) -> Iterator[TestClient]:
    app = create_app(agent_settings, model=model, embedder=FakeEmbedder())
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def test_mode_agent_answers_with_its_steps(client: TestClient, model: FakeChatModel) -> None:
    model._replies += [COUNT, FINAL]
    response = client.post(
        "/v1/assistant/generate", json={"query": "How many customers are there?", "mode": "agent"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"] == "agent"
    assert body["answer"] == "There are 8 customers."
    assert body["limit_hit"] is False and body["stop_reason"] == "answer"
    tools = [s["tool"] for s in body["steps"]]
    assert tools == ["sql_schema", "sql_query", "sql_query", "final_answer"]
    assert [s["automatic"] for s in body["steps"]] == [True, True, False, False]
    query = body["steps"][2]
    assert query["input"] == {"sql": "SELECT count(*) FROM customers"}
    assert query["ok"] is True and "8" in query["observation"]
    assert set(query) >= {"index", "thought", "model_ms", "tool_ms", "automatic"}
    assert body["usage"]["prompt_tokens"] > 0 and body["model"] == "fake-chat"
    assert set(body["stages_ms"]) == {"routing", "agent"}
    assert body["citations"] == []


def test_auto_mode_routes_data_questions_to_the_agent(
    client: TestClient, model: FakeChatModel
) -> None:
    model._replies += [COUNT, FINAL, "Set llm.fallbacks [1]."]
    data = client.post("/v1/assistant/generate", json={"query": "How many customers are there?"})
    assert data.json()["route"] == "agent"
    docs = client.post(
        "/v1/assistant/generate", json={"query": "How do I configure a fallback model?"}
    )
    assert docs.json()["route"] == "rag" and docs.json()["steps"] == []


def test_step_limit_is_flagged_in_the_answer(
    agent_settings: Settings, model: FakeChatModel
) -> None:
    settings = agent_settings.model_copy(
        update={"agents": agent_settings.agents.model_copy(update={"max_steps": 1})}
    )
    model._replies += [COUNT, "not an action"]
    app = create_app(settings, model=model, embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        body = client.post(
            "/v1/assistant/generate", json={"query": "count customers", "mode": "agent"}
        ).json()
    assert body["limit_hit"] is True and body["stop_reason"] == "max_steps"
    assert "step limit" in body["answer"] and "8" in body["answer"]


def test_disabled_agent_refuses_mode_agent(fake_settings: Settings) -> None:
    settings = without_guards(
        fake_settings.model_copy(
            update={"agents": fake_settings.agents.model_copy(update={"enabled": False})}
        )
    )
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        response = client.post("/v1/assistant/generate", json={"query": "hi", "mode": "agent"})
        assert response.status_code == 400
        assert "agent route is disabled" in response.json()["error"]["message"]
        auto = client.post("/v1/assistant/generate", json={"query": "How many orders?"})
        assert auto.status_code == 200 and auto.json()["route"] in ("chat", "rag")


def test_the_agent_runs_on_the_assembled_chain(fake_settings: Settings) -> None:
    """The chain is built once: the agent's calls go through the same metering and tracing
    wrappers as every other route, with nothing rewired after assembly."""
    parts = assemble(fake_settings, model=FakeChatModel(), embedder=FakeEmbedder())
    assert parts.assistant.agent is not None
    assert parts.assistant.agent.model is parts.model is parts.assistant.model
    assert isinstance(parts.model, TracedModel)


async def test_auto_routing_can_be_switched_off(shop_db: Path) -> None:
    tools = [SqlSchemaTool(str(shop_db)), SqlQueryTool(str(shop_db))]
    model = FakeChatModel(["chatted"])
    agent = ReActAgent(model, tools)
    assistant = AssistantService(model, None, system_prompt="s", agent=agent, auto_agent=False)
    answer = await assistant.generate("How many customers are there?")
    assert answer.route == "chat" and answer.answer == "chatted"
    with pytest.raises(InvalidRequestError, match="disabled"):
        await AssistantService(model, None, system_prompt="s").generate("x", mode="agent")


def test_agents_adapter_gives_the_agent_its_own_chain(
    fake_settings: Settings, tmp_path: Path
) -> None:
    """With ``agents.adapter`` the agent runs the same llama.cpp model with that adapter in place
    of ``llm.adapter``; the assistant's model keeps its own."""
    from genai_factory.assistant.assembly import _innermost
    from genai_factory.llm.llamacpp import LlamaCppModel

    adapter = tmp_path / "agent.gguf"
    adapter.write_bytes(b"GGUF")
    settings = without_guards(
        fake_settings.model_copy(
            update={
                "llm": fake_settings.llm.model_copy(
                    update={"provider": "llamacpp", "model": "smollm2", "adapter": "none"}
                ),
                "agents": fake_settings.agents.model_copy(update={"adapter": str(adapter)}),
            }
        )
    )
    parts = assemble(settings, embedder=FakeEmbedder())
    agent = parts.assistant.agent
    assert agent is not None and parts.agent_model is not None
    assert agent.model is parts.agent_model and agent.model is not parts.model
    assert parts.assistant.model is parts.model
    served, for_agent = _innermost(parts.model), _innermost(parts.agent_model)
    assert isinstance(served, LlamaCppModel) and isinstance(for_agent, LlamaCppModel)
    assert served.adapter_path is None and for_agent.adapter_path == adapter
    plain = assemble(without_guards(fake_settings), model=FakeChatModel(), embedder=FakeEmbedder())
    assert plain.agent_model is None


def test_a_name_in_a_data_question_reaches_the_agent_and_is_redacted_elsewhere(
    fake_settings: Settings, shop_db: Path
) -> None:
    settings = fake_settings.model_copy(
        update={"agents": fake_settings.agents.model_copy(update={"database": str(shop_db)})}
    )
    lookup = act(
        "sql_query",
        sql="SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
        "WHERE customers.name = 'Ada Lovelace'",
    )
    model = FakeChatModel([lookup, act("final_answer", answer="She placed 2 orders.")])
    app = create_app(settings, model=model, embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        body = client.post(
            "/v1/assistant/generate",
            json={"query": "How many orders did Ada Lovelace place in the shop?"},
        ).json()
        assert body["route"] == "agent", body
        asked = [m.content for m in model.calls[0] if m.role == "user"]
        assert any("How many orders did Ada Lovelace place" in text for text in asked), asked
        assert [v["guard"] for v in body["safety"]["input"] if v["guard"] == "pii"] == ["pii"]
        # The same name on a route that is not the agent's is redacted before the model sees it.
        model.calls.clear()
        client.post(
            "/v1/assistant/generate",
            json={"query": "Write a short greeting to Ada Lovelace.", "mode": "chat"},
        )
        asked = [m.content for m in model.calls[0] if m.role == "user"]
        assert asked and not any("Ada Lovelace" in text for text in asked), asked
