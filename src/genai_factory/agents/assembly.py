"""Build the agent of the agent route from settings: its tools, its limits, its action format.

``agents.action_format: auto`` picks, from the primary provider's capabilities, native tool calling
when it has it (``openai_compatible``), the two-stage constrained format when it has grammar-
constrained output (the embedded llama.cpp model; built for a 135M model, see
:mod:`~genai_factory.agents.staged`) and one JSON action per step otherwise (the fake model). With
native calling, a fallback model without tools answers in text, which the loop takes as the final
answer.
"""

from __future__ import annotations

import structlog

from genai_factory.agents.formats import FormatName
from genai_factory.agents.knowledge import Searcher
from genai_factory.agents.react import AgentLimits, ReActAgent
from genai_factory.agents.registry import ToolDeps, build_tools
from genai_factory.agents.sql_results import SQLLimits
from genai_factory.config import Settings
from genai_factory.llm.base import ChatModel
from genai_factory.llm.registry import provider_capabilities

log = structlog.get_logger(__name__)


def action_format_for(settings: Settings) -> FormatName:
    """The action format the settings ask for (``auto`` resolved by the primary provider)."""
    chosen = settings.agents.action_format
    if chosen != "auto":
        return chosen
    capabilities = provider_capabilities(settings.llm.provider)
    if capabilities.native_tools:
        return "native"
    return "json_staged" if capabilities.grammar else "json_schema"


def tool_deps(settings: Settings, searcher: Searcher | None) -> ToolDeps:
    """What the configured tools are built over: the database, the searcher and the limits."""
    config = settings.agents
    return ToolDeps(
        database=settings.agent_database(),
        searcher=searcher,
        sql_limits=SQLLimits(max_rows=config.sql_max_rows, timeout_s=config.tool_timeout_s),
        timeout_s=config.tool_timeout_s,
        knowledge_k=settings.rag.top_k,
    )


def build_agent(
    settings: Settings, model: ChatModel, searcher: Searcher | None
) -> ReActAgent | None:
    """The agent of the agent route, or ``None`` when it is disabled or has no tool."""
    config = settings.agents
    if not config.enabled:
        return None
    tools = build_tools(config.tools, tool_deps(settings, searcher))
    for name, reason in tools.skipped.items():
        log.warning("agent_tool_skipped", tool=name, reason=reason)
    if not tools.tools:
        log.warning("agent_disabled", reason="no tool is available")
        return None
    limits = AgentLimits(
        max_steps=config.max_steps,
        timeout_s=config.timeout_s,
        token_budget=config.token_budget,
        step_max_tokens=config.step_max_tokens,
    )
    return ReActAgent(
        model,
        tools.tools,
        action_format=action_format_for(settings),
        limits=limits,
        temperature=settings.llm.temperature,
    )
