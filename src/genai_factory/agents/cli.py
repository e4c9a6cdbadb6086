"""``genai-factory tools ...``: run the agent tools by hand.

``tools sql --db PATH_OR_URL "SELECT ..."`` prints the rows of an allowed query and exits 0; a
refused query prints ``rejected: <reason>`` to stderr and exits 2; any other failure (time limit,
missing file, database error) prints one ``error: ...`` line to stderr and exits 1. ``tools schema
--db PATH_OR_URL`` lists tables and columns. ``--json`` prints one JSON object instead of a table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel

from genai_factory.agents.sql_guard import SQLRejected
from genai_factory.agents.sql_results import SchemaInfo, SQLLimits, SQLResult
from genai_factory.agents.tools import SqlQueryArgs, SqlQueryTool, SqlSchemaArgs, SqlSchemaTool
from genai_factory.exceptions import GenAIFactoryError

ResultT = TypeVar("ResultT", bound=BaseModel)

EXIT_REJECTED = 2
EXIT_FAILED = 1

tools_app = typer.Typer(
    name="tools",
    help="Run the agent tools by hand (read-only SQL).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    str,
    typer.Option(
        "--db", help="SQLite file (or sqlite:///path) or postgresql:// URL.", show_default=False
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, max=600.0, help="Wall-time limit in seconds.")
]


@tools_app.command("sql")
def sql_command(
    query: Annotated[
        str, typer.Argument(help="One read-only SELECT statement.", show_default=False)
    ],
    db: DbOption,
    as_json: JsonFlag = False,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, max=100_000, help="Row cap.")] = 200,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Run one read-only SELECT and print its rows."""
    tool = SqlQueryTool(db, limits=SQLLimits(max_rows=max_rows, timeout_s=timeout))
    result: SQLResult = _run(lambda: tool.run(SqlQueryArgs(sql=query)))
    typer.echo(result.model_dump_json() if as_json else result.to_text())


@tools_app.command("schema")
def schema_command(db: DbOption, as_json: JsonFlag = False, timeout: TimeoutOption = 10.0) -> None:
    """List the tables and views with their columns."""
    tool = SqlSchemaTool(db, limits=SQLLimits(timeout_s=timeout))
    schema: SchemaInfo = _run(lambda: tool.run(SqlSchemaArgs()))
    typer.echo(schema.model_dump_json() if as_json else schema.to_text())


def _run(work: Callable[[], Awaitable[ResultT]]) -> ResultT:
    """Run the tool; refusals exit 2, other failures exit 1, each with one line on stderr."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parser warnings are not for users
    try:
        return asyncio.run(_await(work))
    except SQLRejected as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        typer.echo(f"rejected: {exc.reason}{detail}", err=True)
        raise typer.Exit(EXIT_REJECTED) from None
    except GenAIFactoryError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


async def _await(work: Callable[[], Awaitable[ResultT]]) -> ResultT:
    return await work()
