"""The orchestrator over an OpenAI-compatible backend (the fault-injecting server on 127.0.0.1):
the SQL specialist calls its own tools, and only those, through native tool calling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.assistant.orchestrator import Orchestrator
from genai_factory.assistant.routing import DataTerms
from genai_factory.assistant.specialists import AgentSpecialist, DocumentsSpecialist
from genai_factory.config import SpecialistSettings
from genai_factory.llm.openai_compatible import OpenAICompatibleModel
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.safety.gate import RequestSafety
from genai_factory.testing.fault_server import Fault, FaultServer

pytestmark = pytest.mark.integration

TWO_STEP = "What does the guide say the budget error is, and how many customers are from the US?"
US_SQL = "SELECT count(*) FROM customers WHERE country = 'US'"
LIMITS = SpecialistSettings(max_steps=4, timeout_s=10.0, token_budget=8000)


class Searcher:
    async def search(self, query: str, k: int = 4) -> list[ScoredChunk]:
        chunk = Chunk(
            id="c1",
            document_id="d1",
            text="A budget that cannot cover the call is refused with 402 budget_exceeded.",
            position=0,
            title="Gateway",
            source="gateway.md",
        )
        return [ScoredChunk(chunk=chunk, score=0.8)]


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer(model="tool-model") as running:
        yield running


@pytest.fixture
async def model(server: FaultServer) -> AsyncIterator[OpenAICompatibleModel]:
    backend = OpenAICompatibleModel(server.base_url, "tool-model")
    yield backend
    await backend.aclose()


async def test_the_sql_step_uses_native_tool_calls_with_its_own_tools(
    server: FaultServer, model: OpenAICompatibleModel, shop_db: Path
) -> None:
    server.script(
        Fault.ok("The budget error is 402 budget_exceeded [1]."),
        Fault.calls_tools(("sql_query", {"sql": US_SQL})),
        Fault.ok("There are 3 customers from the US."),
    )
    db = str(shop_db)
    orchestrator = Orchestrator(
        {
            "documents": DocumentsSpecialist(
                model, Searcher(), system_prompt="Be brief.", limits=LIMITS
            ),
            "sql": AgentSpecialist(
                "sql",
                model,
                [SqlSchemaTool(db), SqlQueryTool(db)],
                limits=LIMITS,
                action_format="native",
            ),
            "calculator": AgentSpecialist(
                "calculator", model, [CalculatorTool()], limits=LIMITS, action_format="native"
            ),
        }
    )
    terms = DataTerms.from_names(["customers"], ["country"])
    done = await orchestrator.run(
        orchestrator.plan(TWO_STEP, terms), safety=RequestSafety(None), trace_id="n1"
    )
    assert done.text == (
        "The budget error is 402 budget_exceeded [1]. There are 3 customers from the US.\n"
        f"SQL: {US_SQL}"
    )
    documents, sql_call, sql_answer = (r.body for r in server.requests)
    assert "tools" not in documents
    assert [t["function"]["name"] for t in sql_call["tools"]] == ["sql_query"]
    tool_messages = [m for m in sql_answer["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1 and "3" in tool_messages[0]["content"]
    assert "Step 1 (documents): The budget error is 402" in sql_call["messages"][0]["content"]
