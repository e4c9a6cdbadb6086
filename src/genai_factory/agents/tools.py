"""The ``Tool`` protocol an agent calls, and the read-only SQL tools that implement it.

A tool is any object with:

* ``name``: a short identifier the model uses to call it (``[a-z_]+``);
* ``description``: one or two sentences telling the model when and how to use it;
* ``args_schema``: a pydantic model class; its JSON schema is what the model fills in, and
  :func:`call_tool` validates the model's arguments with it before ``run`` sees them;
* ``timeout_s``: the longest a call may take, enforced by :func:`call_tool`;
* ``async run(args)``: does the work and returns text or a pydantic model (the caller renders it).
  Blocking work must go to a worker thread. Failures the agent should see and react to are raised
  as :class:`~genai_factory.exceptions.ToolError` or
  :class:`~genai_factory.exceptions.InvalidRequestError` (a refused request); both are meant to be
  shown to the model as an observation, never to crash the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genai_factory.agents.sql import execute_select, read_schema
from genai_factory.agents.sql_guard import DEFAULT_MAX_CHARS
from genai_factory.agents.sql_results import SchemaInfo, SQLLimits, SQLResult
from genai_factory.exceptions import ToolError

ArgsT = TypeVar("ArgsT", bound=BaseModel)

#: Extra seconds :func:`call_tool` grants a SQL tool beyond its engine-level time limit.
SQL_TIMEOUT_GRACE_S = 2.0


@runtime_checkable
class Tool(Protocol[ArgsT]):
    """Something an agent can call; see the module docstring for the contract."""

    name: str
    description: str
    args_schema: type[ArgsT]
    timeout_s: float

    async def run(self, args: ArgsT) -> str | BaseModel:
        """Do the work for validated ``args``."""
        ...


async def call_tool(tool: Tool[Any], raw_args: Mapping[str, object]) -> str | BaseModel:
    """Validate ``raw_args`` with the tool's schema and run it within ``tool.timeout_s``.

    Raises:
        ToolError: the arguments do not fit the schema, or the call ran out of time.
    """
    try:
        args = tool.args_schema.model_validate(dict(raw_args))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolError(f"invalid arguments for {tool.name}: {problems}") from None
    try:
        return await asyncio.wait_for(tool.run(args), tool.timeout_s)
    except TimeoutError:
        raise ToolError(f"{tool.name} did not finish within {tool.timeout_s:g} s") from None


class SqlQueryArgs(BaseModel):
    """Arguments of ``sql_query``."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(
        min_length=1,
        max_length=DEFAULT_MAX_CHARS,
        description="One read-only SQL SELECT statement (WITH ... SELECT allowed).",
    )


class SqlSchemaArgs(BaseModel):
    """``sql_schema`` takes no arguments."""

    model_config = ConfigDict(extra="forbid")


class SqlQueryTool:
    """``sql_query``: one read-only SELECT on a SQLite file or PostgreSQL database.

    Args:
        db: SQLite path (or ``sqlite:///path``) or ``postgresql://`` URL.
        limits: row cap, wall-time limit and size limits; the model cannot change them.
    """

    name = "sql_query"
    description = (
        "Run one read-only SQL SELECT statement on the database and get its columns and rows. "
        "Writes, schema changes, PRAGMA and multiple statements are refused. "
        "Call sql_schema first to see the tables and columns."
    )
    args_schema: type[SqlQueryArgs] = SqlQueryArgs

    def __init__(self, db: str, *, limits: SQLLimits | None = None) -> None:
        self.db = db
        self.limits = limits or SQLLimits()
        self.timeout_s = self.limits.timeout_s + SQL_TIMEOUT_GRACE_S

    async def run(self, args: SqlQueryArgs) -> SQLResult:
        """Check and run ``args.sql`` in a worker thread."""
        return await asyncio.to_thread(execute_select, self.db, args.sql, self.limits)


class SqlSchemaTool:
    """``sql_schema``: the tables and views of the database with their columns.

    Args:
        db: SQLite path (or ``sqlite:///path``) or ``postgresql://`` URL.
        limits: only ``timeout_s`` applies.
    """

    name = "sql_schema"
    description = (
        "List the tables and views of the database with their columns, types, primary keys and "
        "references. Takes no arguments."
    )
    args_schema: type[SqlSchemaArgs] = SqlSchemaArgs

    def __init__(self, db: str, *, limits: SQLLimits | None = None) -> None:
        self.db = db
        self.limits = limits or SQLLimits()
        self.timeout_s = self.limits.timeout_s + SQL_TIMEOUT_GRACE_S

    async def run(self, args: SqlSchemaArgs) -> SchemaInfo:
        """Read the schema in a worker thread."""
        return await asyncio.to_thread(read_schema, self.db, self.limits)
