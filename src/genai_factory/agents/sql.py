"""Read-only SQL for agents: check a query, then run it on SQLite or PostgreSQL within limits.

``db`` is a SQLite file path (or ``sqlite:///path``) or a ``postgresql://`` URL. Every query goes
through :func:`~genai_factory.agents.sql_guard.check_select` first and runs as the normalised
text it returns; the backend adds engine-level layers (read-only connection, authorizer or
read-only transaction, wall-time limit, row cap). These functions block: call them from a worker
thread (``asyncio.to_thread``), as the tools in :mod:`genai_factory.agents.tools` do.

Errors: :class:`~genai_factory.agents.sql_guard.SQLRejected` (an ``InvalidRequestError``) when a
query is refused, :class:`~genai_factory.agents.sql_results.SQLTimeout` when the time limit
stopped it, :class:`~genai_factory.exceptions.ToolError` for other database failures, and
:class:`~genai_factory.exceptions.ConfigurationError` if PostgreSQL is named without psycopg.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from genai_factory.agents.sql_guard import check_select
from genai_factory.agents.sql_results import SchemaInfo, SQLLimits, SQLResult
from genai_factory.agents.sql_sqlite import read_sqlite_schema, run_sqlite_query
from genai_factory.exceptions import ConfigurationError

Dialect = Literal["sqlite", "postgres"]


def dialect_of(db: str) -> Dialect:
    """``"postgres"`` for ``postgresql://`` and ``postgres://`` URLs, ``"sqlite"`` otherwise."""
    return "postgres" if db.startswith(("postgresql://", "postgres://")) else "sqlite"


def execute_select(db: str, sql: str, limits: SQLLimits | None = None) -> SQLResult:
    """Check ``sql`` and run it read-only on ``db``; blocking."""
    limits = limits or SQLLimits()
    dialect = dialect_of(db)
    checked = check_select(sql, dialect, max_value_bytes=limits.max_value_bytes)
    if dialect == "postgres":
        run_postgres, _ = _postgres_backend()
        return run_postgres(db, checked, limits)
    return run_sqlite_query(db, checked, limits)


def read_schema(db: str, limits: SQLLimits | None = None) -> SchemaInfo:
    """Tables, views and columns of ``db``; blocking."""
    limits = limits or SQLLimits()
    if dialect_of(db) == "postgres":
        _, read_postgres = _postgres_backend()
        return read_postgres(db, limits)
    return read_sqlite_schema(db, limits)


def _postgres_backend() -> tuple[
    Callable[[str, str, SQLLimits], SQLResult], Callable[[str, SQLLimits], SchemaInfo]
]:
    """The PostgreSQL backend, imported on first use so that psycopg stays optional."""
    try:
        from genai_factory.agents.sql_postgres import read_postgres_schema, run_postgres_query
    except ImportError as exc:
        raise ConfigurationError(
            f"PostgreSQL support needs psycopg 3 (pip install 'psycopg[binary]'): {exc}"
        ) from None
    return run_postgres_query, read_postgres_schema
