"""``knowledge_search`` over a real KnowledgeIndex with the FakeEmbedder, alone and in the loop;
and the tool registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.knowledge import KnowledgeSearchTool, render_hits
from genai_factory.agents.react import ReActAgent
from genai_factory.agents.registry import ToolDeps, build_tools
from genai_factory.agents.tools import SqlQueryTool, call_tool
from genai_factory.components import TOOLS
from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError, ToolError
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder


@pytest.fixture
async def index(tmp_path: Path) -> KnowledgeIndex:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fallback.md").write_text(
        "# Fallback\n\nConfigure a fallback model with llm fallbacks, an ordered list.\n"
    )
    (docs / "cooking.md").write_text("# Cooking\n\nBoil pasta in salted water for ten minutes.\n")
    idx = KnowledgeIndex(EmbeddedVectorStore(tmp_path / "i"), FakeEmbedder())
    await idx.ingest_path(docs)
    return idx


async def test_search_returns_numbered_excerpts_with_sources(index: KnowledgeIndex) -> None:
    tool = KnowledgeSearchTool(index, k=2)
    text = await call_tool(tool, {"query": "fallback model"})
    assert isinstance(text, str)
    first = text.splitlines()[0]
    assert first.startswith("[1] Fallback (fallback.md, score ")
    assert "ordered list" in first
    assert text.count("\n") == 1  # two hits


async def test_excerpts_are_cut(index: KnowledgeIndex) -> None:
    hits = await index.search("pasta", 1)
    line = render_hits(hits, excerpt_chars=20)
    assert line.endswith("…") and len(line.split(": ", 1)[1]) == 20
    assert render_hits([], 20) == "No matching documents."


async def test_bad_queries_are_tool_errors(index: KnowledgeIndex) -> None:
    tool = KnowledgeSearchTool(index)
    for bad in ({}, {"query": ""}, {"query": "x" * 301}, {"query": "a", "k": 50}):
        with pytest.raises(ToolError, match="invalid arguments for knowledge_search"):
            await call_tool(tool, bad)


async def test_the_agent_answers_from_the_knowledge_base(index: KnowledgeIndex) -> None:
    replies = [
        json.dumps(
            {
                "thought": "Search the docs.",
                "action": "knowledge_search",
                "input": {"query": "configure a fallback model"},
            }
        ),
        json.dumps(
            {
                "thought": "Found it.",
                "action": "final_answer",
                "input": {"answer": "Use llm fallbacks, an ordered list [fallback.md]."},
            }
        ),
    ]
    model = FakeChatModel(replies)
    result = await ReActAgent(model, [KnowledgeSearchTool(index), CalculatorTool()]).run(
        "How do I configure a fallback model?"
    )
    search = result.tool_steps("knowledge_search")[0]
    assert search.ok and "fallback.md" in search.observation
    assert "fallback.md" in model.calls[1][-1].content
    # The worked example shown to the model is the knowledge one: no SQL tool is on offer.
    assert "SELECT" not in " ".join(m.content for m in model.calls[0])
    assert result.answer.startswith("Use llm fallbacks")


# -- registry ---------------------------------------------------------------------------------
def test_registry_builds_every_configured_tool(tmp_path: Path, index: KnowledgeIndex) -> None:
    deps = ToolDeps(database=str(tmp_path / "x.db"), searcher=index)
    built = build_tools(list(TOOLS), deps)
    assert built.names == ["sql_schema", "sql_query", "calculator", "knowledge_search"]
    assert built.skipped == {}
    assert isinstance(built.tools[1], SqlQueryTool)


def test_registry_skips_tools_without_their_dependency() -> None:
    built = build_tools(list(TOOLS), ToolDeps())
    assert built.names == ["calculator"]
    assert set(built.skipped) == {"sql_schema", "sql_query", "knowledge_search"}
    assert "agents.database" in built.skipped["sql_query"]


def test_registry_refuses_unregistered_names() -> None:
    with pytest.raises(ConfigurationError, match="unknown agent tools"):
        build_tools(["calculator", "shell"], ToolDeps())


def test_settings_only_accept_registered_tool_names(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"agents\.tools"):
        Settings(_env_file=None, agents={"tools": ["calculator", "os.system"]})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="twice"):
        Settings(_env_file=None, agents={"tools": ["calculator", "calculator"]})  # type: ignore[call-arg]
    settings = Settings(_env_file=None, agents={"database": str(tmp_path / "a.db")})  # type: ignore[call-arg]
    assert settings.agent_database() == str(tmp_path / "a.db")
    assert Settings(_env_file=None).agent_database().endswith("examples/shop.db")  # type: ignore[call-arg, union-attr]
