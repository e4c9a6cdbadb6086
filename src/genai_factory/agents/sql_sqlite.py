"""Read-only SQLite execution: the engine-level layers beneath :func:`check_select`.

Each query gets its own connection, opened as ``file:<path>?mode=ro`` (the OS-level open is
read-only; a missing file is an error, never created), then:

* ``PRAGMA query_only = ON`` and ``PRAGMA trusted_schema = OFF``;
* limits: no attached databases, strings and blobs up to ``max_value_bytes``, SQL text up to 1 MB,
  ``LIKE``/``GLOB`` patterns up to 500 bytes;
* an authorizer that permits only reading (``SELECT``, column reads, function calls outside the
  guard's deny-list, recursive CTEs) and denies every other action, so a write, ``PRAGMA``,
  ``ATTACH`` or transaction fails inside SQLite even if it got past the parser;
* a progress handler that aborts the statement at the wall-time limit (runaway recursive CTEs,
  huge cross joins), and a row/size cap while fetching. The handler runs between steps of the
  program, not inside one function call: the guard bounds the arguments of the few built-ins that
  could run long in one call (:mod:`genai_factory.agents.sql_cost`).

The SQL given here must already have passed :func:`check_select`; these layers are defence in
depth, not a replacement for it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from genai_factory.agents.sql_guard import SQLRejected, function_denied, relation_denied
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

PROGRESS_STEPS = 2_000
MAX_SQL_BYTES = 1_000_000
#: LIKE/GLOB work grows with pattern length times text length, inside one uninterruptible call.
MAX_LIKE_PATTERN = 500
_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE})

_TABLES_SQL = (
    "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
    "AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name"
)
_COLUMNS_SQL = 'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid'
_FOREIGN_KEYS_SQL = 'SELECT "from", "table", "to" FROM pragma_foreign_key_list(?)'


class _Deadline:
    """Progress handler: returns non-zero (abort) once the wall-time limit has passed."""

    def __init__(self, timeout_s: float) -> None:
        self.end = time.monotonic() + timeout_s
        self.expired = False

    def __call__(self) -> int:
        if time.monotonic() > self.end:
            self.expired = True
            return 1
        return 0


def sqlite_path(db: str) -> Path:
    """The file named by a plain path or a ``sqlite:///path`` URL (``sqlite:////abs`` too)."""
    raw = db.removeprefix("sqlite:///") if db.startswith("sqlite:///") else db
    if not raw or raw.startswith(":") or raw.startswith("file:"):
        raise ToolError(f"not a SQLite database file: {db!r}")
    return Path(raw).expanduser()


def open_readonly(path: Path, limits: SQLLimits) -> sqlite3.Connection:
    """A connection that cannot write: read-only open, ``query_only``, no attachments."""
    if not path.is_file():
        raise ToolError(f"no SQLite database file at {str(path)!r}")
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=min(1.0, limits.timeout_s),
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise ToolError(f"cannot open SQLite database {str(path)!r}: {exc}") from None
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_LIKE_PATTERN)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
    except sqlite3.Error as exc:
        conn.close()
        raise ToolError(f"cannot open SQLite database {str(path)!r}: {exc}") from None
    return conn


def authorize(
    action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None
) -> int:
    """SQLite authorizer: reading only; everything else is denied at prepare time."""
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        return sqlite3.SQLITE_DENY if relation_denied(arg1 or "") else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if function_denied(arg2 or "") else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # Opening a table-valued function (json_each) probes these; ignoring them reads nothing
        # and writes nothing (the connection is read-only anyway).
        return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_DENY


def run_sqlite_query(db: str, sql: str, limits: SQLLimits) -> SQLResult:
    """Run one already-checked SELECT on a read-only connection within ``limits``."""
    started = time.monotonic()
    deadline = _Deadline(limits.timeout_s)
    conn = open_readonly(sqlite_path(db), limits)
    try:
        conn.set_progress_handler(deadline, PROGRESS_STEPS)
        conn.set_authorizer(authorize)
        cursor = conn.execute(sql)
        columns = [str(d[0]) for d in cursor.description or ()]
        rows, truncated = collect_rows(cursor.fetchmany, limits)
    except sqlite3.Error as exc:
        raise _translate(exc, deadline, limits) from None
    finally:
        conn.close()
    return SQLResult(
        sql=sql,
        columns=columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


def read_sqlite_schema(db: str, limits: SQLLimits) -> SchemaInfo:
    """Tables and views with their columns, primary keys and single-column references."""
    deadline = _Deadline(limits.timeout_s)
    conn = open_readonly(sqlite_path(db), limits)
    try:
        conn.set_progress_handler(deadline, PROGRESS_STEPS)
        tables = [
            TableInfo(name=name, kind=kind, columns=_columns(conn, name))
            for name, kind in conn.execute(_TABLES_SQL).fetchall()
        ]
    except sqlite3.Error as exc:
        raise _translate(exc, deadline, limits) from None
    finally:
        conn.close()
    return SchemaInfo(dialect="sqlite", tables=tables)


def _columns(conn: sqlite3.Connection, table: str) -> list[ColumnInfo]:
    refs = {
        src: f"{ref_table}.{ref_col}" if ref_col else ref_table
        for src, ref_table, ref_col in conn.execute(_FOREIGN_KEYS_SQL, (table,)).fetchall()
    }
    return [
        ColumnInfo(
            name=name,
            type=col_type or "",
            nullable=not notnull and not pk,
            primary_key=bool(pk),
            references=refs.get(name),
        )
        for name, col_type, notnull, pk in conn.execute(_COLUMNS_SQL, (table,)).fetchall()
    ]


def _translate(exc: sqlite3.Error, deadline: _Deadline, limits: SQLLimits) -> Exception:
    """One place where sqlite3 errors become errors of the package's tree."""
    text = str(exc)
    if deadline.expired or text == "interrupted":
        return SQLTimeout(f"query stopped at the {limits.timeout_s:g} s time limit")
    if text.startswith("not authorized") or text == "authorization denied" or "prohibited" in text:
        return SQLRejected("not_authorized", text)
    if "readonly database" in text or "query_only" in text:
        return SQLRejected("write_attempt", text)
    if "too big" in text:
        return ToolError(f"a value exceeds the {limits.max_value_bytes} byte limit")
    return ToolError(f"SQLite error: {text}")
