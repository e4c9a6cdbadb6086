"""What a database holds, as far as questions about it go: :func:`profile_database`.

The schema comes from the agent's own ``sql_schema`` tool and the values from ``sql_query``
(read-only, so any configured database, SQLite or PostgreSQL, is safe to read). Each table's
columns are sorted by what a question can do with them: numbers (not keys), dates, *categories*
(text with few distinct values: the values the agent's SQL grammar allows) and *names* (text unique
per row, such as ``customers.name``), plus its foreign keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from genai_factory.agents.sql_grammar import known_values, values_query
from genai_factory.agents.sql_results import ColumnInfo, SchemaInfo, SQLResult, TableInfo
from genai_factory.agents.tools import SqlQueryArgs, SqlQueryTool, SqlSchemaArgs, SqlSchemaTool

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9 _@.%-]{1,40}")
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")
#: Most names sampled per name column, and numbers per number column.
SAMPLE_VALUES = 40


@dataclass
class TableProfile:
    """The columns of one table sorted by what a question can do with them."""

    name: str
    rows: int
    key: str | None
    numbers: list[str] = field(default_factory=list)
    dates: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    number_values: dict[str, list[float]] = field(default_factory=dict)
    #: Foreign keys: (own column, parent table, parent column).
    parents: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def name_column(self) -> str | None:
        """The column that names a row (``name`` or ``title`` first)."""
        preferred = [c for c in self.names if c in ("name", "title")]
        found = preferred or list(self.names)
        return found[0] if found else None


def _kind(column: ColumnInfo) -> str:
    declared = column.type.upper()
    if "DATE" in declared or "TIME" in declared:
        return "date"
    if any(word in declared for word in _NUMERIC_TYPES):
        return "number"
    if any(word in declared for word in ("CHAR", "TEXT", "CLOB", "STRING")) or not declared:
        return "text"
    return "other"


async def _query(tool: SqlQueryTool, sql: str) -> SQLResult:
    return await tool.run(SqlQueryArgs(sql=sql))


async def read_schema(database: str) -> SchemaInfo:
    """The schema as the agent's ``sql_schema`` tool reads it."""
    return await SqlSchemaTool(database).run(SqlSchemaArgs())


async def profile_database(database: str, schema: SchemaInfo) -> list[TableProfile]:
    """Profile every plain table of ``schema`` with read-only queries on ``database``."""
    tool = SqlQueryTool(database)
    known: dict[tuple[str, str], list[str]] = {}
    sql = values_query(schema)
    if sql is not None:
        known = known_values(await _query(tool, sql))
    profiles = []
    for table in schema.tables:
        if table.kind == "table" and _IDENTIFIER.fullmatch(table.name):
            profiles.append(await _profile_table(tool, table, known))
    return profiles


async def _profile_table(
    tool: SqlQueryTool, table: TableInfo, known: dict[tuple[str, str], list[str]]
) -> TableProfile:
    rows = (await _query(tool, f"SELECT count(*) FROM {table.name}")).rows[0][0]
    keys = [c.name for c in table.columns if c.primary_key]
    profile = TableProfile(
        name=table.name, rows=int(str(rows)), key=keys[0] if len(keys) == 1 else None
    )
    for column in table.columns:
        if not _IDENTIFIER.fullmatch(column.name):
            continue
        if column.references:
            parent, _, parent_column = column.references.partition(".")
            profile.parents.append((column.name, parent, parent_column))
            continue
        if column.primary_key or column.name.endswith("_id"):
            continue
        await _profile_column(tool, profile, column, known.get((table.name, column.name)))
    return profile


async def _profile_column(
    tool: SqlQueryTool, profile: TableProfile, column: ColumnInfo, known: list[str] | None
) -> None:
    kind = _kind(column)
    sample = (
        f"SELECT DISTINCT {column.name} FROM {profile.name} "
        f"WHERE {column.name} IS NOT NULL ORDER BY {column.name} LIMIT {SAMPLE_VALUES}"
    )
    if kind == "number":
        values = [v[0] for v in (await _query(tool, sample)).rows]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        if numbers:
            profile.numbers.append(column.name)
            profile.number_values[column.name] = numbers
    elif kind == "date":
        dates = [str(v[0]) for v in (await _query(tool, sample)).rows]
        profile.dates[column.name] = [v for v in dates if _PLAIN_VALUE.fullmatch(v)]
    elif kind == "text":
        distinct_sql = f"SELECT count(DISTINCT {column.name}) FROM {profile.name}"
        distinct = int(str((await _query(tool, distinct_sql)).rows[0][0]))
        if known and distinct < profile.rows:
            profile.categories[column.name] = list(known)
        elif distinct == profile.rows and profile.rows > 1:
            names = [str(v[0]) for v in (await _query(tool, sample)).rows]
            profile.names[column.name] = [v for v in names if _PLAIN_VALUE.fullmatch(v)]
