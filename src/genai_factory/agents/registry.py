"""The tool registry: every tool the configuration may name, built from explicit dependencies.

``agents.tools`` in the settings is a list of names of the table
:data:`genai_factory.components.TOOLS`, whose factories are below, so a configuration can only
choose among the registered tools; it can never import a class. The
SQL tools need a database and ``knowledge_search`` needs a searcher: a tool whose dependency is
missing is left out (and named in :attr:`ToolSet.skipped`), not an error, so a deployment without
a database still gets an agent with the calculator and the knowledge base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.knowledge import KnowledgeSearchTool, Searcher
from genai_factory.agents.sql_results import SQLLimits
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool, Tool
from genai_factory.components import TOOLS, unknown_name
from genai_factory.exceptions import ConfigurationError


@dataclass(frozen=True)
class ToolDeps:
    """What the tools may need: a database (SQLite path or PostgreSQL URL) and a searcher."""

    database: str | None = None
    searcher: Searcher | None = None
    sql_limits: SQLLimits = field(default_factory=SQLLimits)
    timeout_s: float = 10.0
    knowledge_k: int = 3


@dataclass
class ToolSet:
    """The tools built, and the names left out with the reason."""

    tools: list[Tool[Any]]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]


ToolFactory = Callable[[ToolDeps], Tool[Any] | str]


def sql_query_tool(deps: ToolDeps) -> Tool[Any] | str:
    if deps.database is None:
        return "no database is configured (agents.database)"
    return SqlQueryTool(deps.database, limits=deps.sql_limits)


def sql_schema_tool(deps: ToolDeps) -> Tool[Any] | str:
    if deps.database is None:
        return "no database is configured (agents.database)"
    return SqlSchemaTool(deps.database, limits=deps.sql_limits)


def calculator_tool(deps: ToolDeps) -> Tool[Any] | str:
    return CalculatorTool(timeout_s=min(deps.timeout_s, 5.0))


def knowledge_search_tool(deps: ToolDeps) -> Tool[Any] | str:
    if deps.searcher is None:
        return "no knowledge index is available"
    return KnowledgeSearchTool(deps.searcher, k=deps.knowledge_k, timeout_s=deps.timeout_s)


def build_tools(names: Sequence[str], deps: ToolDeps) -> ToolSet:
    """The tools called ``names`` (registered names only), built over ``deps``.

    Raises:
        ConfigurationError: a name is not registered.
    """
    unknown = [name for name in names if name not in TOOLS]
    if unknown:
        raise ConfigurationError(unknown_name("agent tools", ", ".join(unknown), TOOLS))
    built = ToolSet(tools=[])
    for name in names:
        made = cast(ToolFactory, TOOLS[name].load())(deps)
        if isinstance(made, str):
            built.skipped[name] = made
        else:
            built.tools.append(made)
    return built
