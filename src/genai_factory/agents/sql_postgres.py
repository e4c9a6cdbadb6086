"""Read-only PostgreSQL execution with psycopg 3: the engine-level layers beneath the guard.

Imported lazily by :mod:`genai_factory.agents.sql`, so psycopg is needed only for PostgreSQL.

Each query gets its own connection and one transaction that is always rolled back:

* the session starts with ``default_transaction_read_only=on``, ``statement_timeout``,
  ``lock_timeout`` and ``idle_in_transaction_session_timeout``; the transaction itself is opened
  ``READ ONLY`` (psycopg's ``read_only``), so any write fails inside PostgreSQL;
* the statement runs as a server-side cursor (``DECLARE ... CURSOR FOR``), which accepts one
  query and nothing else, and only ``max_rows + 1`` rows ever cross the wire;
* a watchdog cancels the statement from the client if the server's own timeout did not.

The database role should still be one that may only read what the tool may show: a read-only
transaction cannot make a secret table unreadable.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg import errors

from genai_factory.agents.sql_guard import SQLRejected
from genai_factory.agents.sql_results import (
    ColumnInfo,
    SchemaInfo,
    SQLLimits,
    SQLResult,
    SQLTimeout,
    TableInfo,
    collect_rows,
)
from genai_factory.exceptions import ToolError

WATCHDOG_GRACE_S = 1.0

_SCHEMA_SQL = """
SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       EXISTS (SELECT 1 FROM pg_constraint p
               WHERE p.conrelid = c.oid AND p.contype = 'p' AND a.attnum = ANY (p.conkey)),
       (SELECT fc.relname || '.' || fa.attname
          FROM pg_constraint f
          JOIN pg_class fc ON fc.oid = f.confrelid
          JOIN pg_attribute fa ON fa.attrelid = f.confrelid
                              AND fa.attnum = f.confkey[array_position(f.conkey, a.attnum)]
         WHERE f.conrelid = c.oid AND f.contype = 'f' AND a.attnum = ANY (f.conkey)
         LIMIT 1)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg!_toast%' ESCAPE '!' AND n.nspname NOT LIKE 'pg!_temp!_%' ESCAPE '!'
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY n.nspname, c.relname, a.attnum
"""


def run_postgres_query(url: str, sql: str, limits: SQLLimits) -> SQLResult:
    """Run one already-checked SELECT in a read-only transaction within ``limits``."""
    started = time.monotonic()
    conn = _connect(url, limits)
    watchdog = threading.Timer(limits.timeout_s + WATCHDOG_GRACE_S, _cancel, (conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        with conn.cursor(name=f"genai_sql_{uuid.uuid4().hex[:12]}") as cursor:
            cursor.execute(sql)
            columns = [c.name for c in cursor.description or ()]
            rows, truncated = collect_rows(cursor.fetchmany, limits)
    except psycopg.Error as exc:
        raise _translate(exc, limits) from None
    finally:
        watchdog.cancel()
        _close(conn)
    return SQLResult(
        sql=sql,
        columns=columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


def read_postgres_schema(url: str, limits: SQLLimits) -> SchemaInfo:
    """Readable tables, views and their columns outside the system schemas."""
    conn = _connect(url, limits)
    try:
        records = conn.execute(_SCHEMA_SQL).fetchall()
    except psycopg.Error as exc:
        raise _translate(exc, limits) from None
    finally:
        _close(conn)
    tables: dict[str, TableInfo] = {}
    for schema, rel, relkind, col, col_type, notnull, pk, ref in records:
        name = rel if schema == "public" else f"{schema}.{rel}"
        kind = "view" if relkind in ("v", "m") else "table"
        table = tables.setdefault(name, TableInfo(name=name, kind=kind, columns=[]))
        table.columns.append(
            ColumnInfo(
                name=col,
                type=col_type,
                nullable=not notnull,
                primary_key=bool(pk),
                references=ref,
            )
        )
    return SchemaInfo(dialect="postgres", tables=list(tables.values()))


def _connect(url: str, limits: SQLLimits) -> psycopg.Connection[Any]:
    timeout_ms = max(1, int(limits.timeout_s * 1000))
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms} "
        f"-c lock_timeout={timeout_ms} -c idle_in_transaction_session_timeout={timeout_ms * 4}"
    )
    try:
        conn = psycopg.connect(
            url,
            autocommit=False,
            connect_timeout=max(2, int(limits.timeout_s) + 1),
            options=options,
            application_name="genai-factory-sql",
        )
    except psycopg.Error as exc:
        raise ToolError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
    conn.read_only = True
    return conn


def _cancel(conn: psycopg.Connection[Any]) -> None:
    """Watchdog: ask the server to cancel the running statement (the connection may be gone)."""
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=2.0)


def _close(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):  # a broken connection can only be closed
        conn.rollback()
    conn.close()


def _translate(exc: psycopg.Error, limits: SQLLimits) -> Exception:
    """One place where psycopg errors become errors of the package's tree."""
    if isinstance(exc, errors.QueryCanceled):
        return SQLTimeout(f"query stopped at the {limits.timeout_s:g} s time limit")
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return SQLRejected("write_attempt", _first_line(exc))
    if isinstance(exc, errors.InsufficientPrivilege):
        return ToolError(f"permission denied: {_first_line(exc)}")
    return ToolError(f"PostgreSQL error: {_first_line(exc)}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
