"""What the SQL tools return and the limits they run under, shared by the SQLite and PostgreSQL code.

* :class:`SQLLimits`: row cap, wall-time limit, largest value and largest result.
* :class:`SQLResult`: columns, JSON-safe rows, ``row_count``, ``truncated``, ``elapsed_ms``.
* :class:`SchemaInfo`: tables (and views) with their columns, for ``sql_schema``.
* :class:`SQLTimeout`: the query was stopped by the wall-time limit.
* :func:`collect_rows`: fetch at most ``max_rows`` rows (and ``max_result_bytes``) from a cursor.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, JsonValue

from genai_factory.exceptions import ToolError

FETCH_BATCH = 256


class SQLTimeout(ToolError):
    """The query ran into the wall-time limit and was stopped by the database engine."""

    code = "sql_timeout"


@dataclass(frozen=True)
class SQLLimits:
    """Limits for one query.

    Attributes:
        max_rows: rows returned at most; more rows set ``truncated``.
        timeout_s: wall time for the statement (SQLite: progress handler; PostgreSQL:
            ``statement_timeout``), connecting included for SQLite.
        max_value_bytes: largest string or blob SQLite may build (``SQLITE_LIMIT_LENGTH``).
        max_result_bytes: approximate size of all returned values; more sets ``truncated``.
    """

    max_rows: int = 200
    timeout_s: float = 5.0
    max_value_bytes: int = 200_000
    max_result_bytes: int = 2_000_000

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        if not 0 < self.timeout_s <= 3600:
            raise ValueError("timeout_s must be in (0, 3600]")
        if self.max_value_bytes < 1_000 or self.max_result_bytes < 1_000:
            raise ValueError("max_value_bytes and max_result_bytes must be at least 1000")


class SQLResult(BaseModel):
    """The answer of one read-only query."""

    sql: str
    columns: list[str]
    rows: list[list[JsonValue]]
    row_count: int
    truncated: bool
    elapsed_ms: float

    def to_text(self, max_cell_chars: int = 80) -> str:
        """A plain aligned table with a footer line, for terminals and agent observations."""
        header = [_clip(c, max_cell_chars) for c in self.columns]
        body = [[_clip(_cell_text(v), max_cell_chars) for v in row] for row in self.rows]
        widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]
        lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body)
        noun = "row" if self.row_count == 1 else "rows"
        more = ", truncated: more rows exist" if self.truncated else ""
        lines.append(f"({self.row_count} {noun}{more}; {self.elapsed_ms:.0f} ms)")
        return "\n".join(line.rstrip() for line in lines)


class ColumnInfo(BaseModel):
    """One column: declared type, nullability, primary-key membership, and its reference if any."""

    name: str
    type: str
    nullable: bool
    primary_key: bool
    references: str | None = None


class TableInfo(BaseModel):
    """A table or view and its columns, in declaration order."""

    name: str
    kind: Literal["table", "view"]
    columns: list[ColumnInfo]


class SchemaInfo(BaseModel):
    """The tables and views a query may read."""

    dialect: Literal["sqlite", "postgres"]
    tables: list[TableInfo]

    def to_text(self) -> str:
        """One line per table: ``table name(col TYPE PK, col TYPE -> other.col, ...)``."""
        lines = []
        for table in self.tables:
            cols = ", ".join(_column_text(c) for c in table.columns)
            lines.append(f"{table.kind} {table.name}({cols})")
        return "\n".join(lines) if lines else "(no tables)"


def collect_rows(
    fetchmany: Callable[[int], Sequence[Sequence[object]]], limits: SQLLimits
) -> tuple[list[list[JsonValue]], bool]:
    """Fetch JSON-safe rows within ``limits``; the flag is True when rows were left behind."""
    rows: list[list[JsonValue]] = []
    size = 0
    while len(rows) < limits.max_rows:
        batch = fetchmany(min(FETCH_BATCH, limits.max_rows - len(rows)))
        if not batch:
            return rows, False
        for raw in batch:
            row = [json_safe(v) for v in raw]
            size += sum(_value_size(v) for v in row)
            if size > limits.max_result_bytes:
                return rows, True
            rows.append(row)
    return rows, bool(fetchmany(1))


def json_safe(value: object) -> JsonValue:
    """A JSON-representable version of a database value (bytes as ``\\x`` hex, dates ISO 8601)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def _decimal(value: Decimal) -> JsonValue:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _value_size(value: JsonValue) -> int:
    return len(value) + 8 if isinstance(value, str) else 8


def _cell_text(value: JsonValue) -> str:
    return "NULL" if value is None else str(value)


def _clip(text: str, limit: int) -> str:
    text = text.replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _column_text(column: ColumnInfo) -> str:
    parts = [column.name, column.type or "ANY"]
    if column.primary_key:
        parts.append("PK")
    if column.references:
        parts.append(f"-> {column.references}")
    return " ".join(parts)
