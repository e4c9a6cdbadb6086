"""The SQL tools on SQLite: rows, limits, engine-level refusals, and an untouched database file."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from genai_factory.agents.sql import dialect_of, execute_select, read_schema
from genai_factory.agents.sql_guard import SQLRejected
from genai_factory.agents.sql_results import SQLLimits, SQLTimeout, json_safe
from genai_factory.agents.sql_sqlite import run_sqlite_query
from genai_factory.agents.tools import (
    SqlQueryArgs,
    SqlQueryTool,
    SqlSchemaArgs,
    SqlSchemaTool,
    Tool,
    call_tool,
)
from genai_factory.exceptions import GenAIFactoryError, ToolError

FAST = SQLLimits(max_rows=50, timeout_s=0.3)


def _fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in the database's folder (catches -journal/-wal files too)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_allowed_query_returns_columns_and_rows(shop_db: Path) -> None:
    result = execute_select(str(shop_db), "SELECT id, name FROM customers ORDER BY id LIMIT 3")

    assert result.columns == ["id", "name"]
    assert result.rows == [[1, "Ada Lovelace"], [2, "Grace Hopper"], [3, "Alan Turing"]]
    assert (result.row_count, result.truncated) == (3, False)
    assert result.elapsed_ms >= 0
    assert result.sql == 'SELECT "id", "name" FROM "customers" ORDER BY "id" LIMIT 3'


def test_sqlite_url_form_is_accepted(shop_db: Path) -> None:
    result = execute_select(f"sqlite:///{shop_db}", "SELECT count(*) AS n FROM orders")

    assert result.rows == [[12]]


def test_rows_are_capped_and_truncation_reported(shop_db: Path) -> None:
    capped = execute_select(str(shop_db), "SELECT * FROM order_items", SQLLimits(max_rows=5))
    exact = execute_select(str(shop_db), "SELECT * FROM customers", SQLLimits(max_rows=8))

    assert (capped.row_count, capped.truncated) == (5, True)
    assert (exact.row_count, exact.truncated) == (8, False)


def test_result_size_is_capped(shop_db: Path) -> None:
    limits = SQLLimits(max_rows=1000, max_result_bytes=5_000)
    sql = (
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 100) "
        "SELECT hex(zeroblob(100)) FROM r"
    )

    result = execute_select(str(shop_db), sql, limits)

    assert result.truncated
    assert 0 < result.row_count < 100


def test_values_are_json_safe(shop_db: Path) -> None:
    result = execute_select(str(shop_db), "SELECT x'00ff', 1e999, -1e999, NULL, 1.5")

    assert result.rows == [["\\x00ff", "inf", "-inf", None, 1.5]]
    assert json_safe((1, [b"\x01"])) == [1, ["\\x01"]]


def test_rejected_query_never_reaches_the_database(shop_db: Path) -> None:
    with pytest.raises(SQLRejected) as info:
        execute_select(str(shop_db), "DELETE FROM customers")

    assert info.value.reason == "write_statement"


def test_runaway_recursive_cte_is_stopped_by_the_time_limit(shop_db: Path) -> None:
    sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
    started = time.monotonic()

    with pytest.raises(SQLTimeout, match="time limit"):
        execute_select(str(shop_db), sql, FAST)

    assert time.monotonic() - started < 2.0


def test_huge_cross_join_is_stopped_by_the_time_limit(shop_db: Path) -> None:
    sql = (
        "SELECT count(*) FROM order_items a, order_items b, order_items c, order_items d, "
        "order_items e, order_items f, order_items g"
    )
    started = time.monotonic()

    with pytest.raises(SQLTimeout):
        execute_select(str(shop_db), sql, FAST)

    assert time.monotonic() - started < 2.0


def test_huge_values_hit_the_length_limit(shop_db: Path) -> None:
    with pytest.raises(ToolError, match="byte limit"):
        execute_select(str(shop_db), "SELECT randomblob(1000 * 1000 * 1000)", FAST)


def test_endless_result_streams_only_up_to_the_row_cap(shop_db: Path) -> None:
    sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"

    result = execute_select(str(shop_db), sql, FAST)

    assert (result.row_count, result.truncated) == (50, True)
    assert result.rows[-1] == [50]


def test_limited_statement_is_refused_or_stopped(shop_db: Path, limited_sql: str) -> None:
    started = time.monotonic()
    try:
        result = execute_select(str(shop_db), limited_sql, FAST)
    except ToolError:  # SQLTimeout or a value over the length limit
        pass
    else:
        assert result.truncated, "a runaway statement must not come back complete"
    assert time.monotonic() - started < 3.0


async def test_whole_hostile_list_through_the_tool_leaves_the_file_unchanged(
    shop_db: Path, hostile_list: list[tuple[str, str]], limited_list: list[str]
) -> None:
    before = _fingerprint(shop_db.parent)
    tool = SqlQueryTool(str(shop_db), limits=FAST)

    for sql, _ in hostile_list:
        with pytest.raises((SQLRejected, ToolError)):  # ToolError: empty or oversized argument
            await call_tool(tool, {"sql": sql})
    for sql in limited_list:
        try:
            result = await call_tool(tool, {"sql": sql})
        except ToolError:
            continue
        assert isinstance(result, BaseModel)
        assert result.model_dump()["truncated"]

    assert _fingerprint(shop_db.parent) == before
    after = execute_select(str(shop_db), "SELECT count(*) FROM customers")
    assert after.rows == [[8]]


def test_engine_layers_alone_refuse_what_the_parser_would(shop_db: Path, tmp_path: Path) -> None:
    """Defence in depth: the connection itself refuses writes, even without ``check_select``."""
    copy = tmp_path / "copy.db"
    refused = [
        "DELETE FROM customers",
        "UPDATE products SET price = 0",
        "INSERT INTO customers (id, name, email, country, signed_up) VALUES (9, 'x', 'y', 'z', 'w')",
        "DROP TABLE order_items",
        "CREATE TEMP TABLE t (a)",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        f"ATTACH DATABASE '{tmp_path / 'evil.db'}' AS evil",
        f"VACUUM INTO '{copy}'",
        "BEGIN IMMEDIATE",
        "SELECT load_extension('/nonexistent/evil.so')",
        "SELECT * FROM pragma_table_info('customers')",
        "WITH x AS (SELECT 1) DELETE FROM customers",
        "ANALYZE",
        "REINDEX",
    ]
    before = _fingerprint(shop_db.parent)

    for sql in refused:
        with pytest.raises(SQLRejected) as info:
            run_sqlite_query(str(shop_db), sql, FAST)
        assert info.value.reason == "not_authorized", sql

    assert _fingerprint(shop_db.parent) == before
    assert not copy.exists()
    assert not (tmp_path / "evil.db").exists()


def test_hostile_list_without_the_parser_leaves_the_file_unchanged(
    shop_db: Path, hostile_list: list[tuple[str, str]]
) -> None:
    """Even with the parser skipped, no hostile statement changes the file.

    Statements refused for ``costly_argument`` are left out: they only read, and bounding the one
    uninterruptible function call they make is the parser's job (it would just take seconds here).
    """
    before = _fingerprint(shop_db.parent)

    for sql, reason in hostile_list:
        if reason == "costly_argument":
            continue
        with contextlib.suppress(GenAIFactoryError):
            run_sqlite_query(str(shop_db), sql, FAST)

    assert _fingerprint(shop_db.parent) == before


def test_missing_or_invalid_database_is_a_tool_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 100)

    with pytest.raises(ToolError, match="no SQLite database"):
        execute_select(str(missing), "SELECT 1")
    with pytest.raises(ToolError, match="not a database"):
        execute_select(str(text), "SELECT * FROM sqlite_master")
    with pytest.raises(ToolError, match="not a SQLite database"):
        execute_select("file:x.db?mode=rwc", "SELECT 1")
    assert not missing.exists()


def test_dialect_follows_the_database_name() -> None:
    assert dialect_of("postgresql://u@localhost/db") == "postgres"
    assert dialect_of("postgres://u@localhost/db") == "postgres"
    assert dialect_of("examples/shop.db") == "sqlite"


def test_schema_lists_tables_columns_keys_and_references(shop_db: Path) -> None:
    schema = read_schema(str(shop_db))

    tables = {t.name: t for t in schema.tables}
    assert sorted(tables) == ["customers", "order_items", "orders", "products"]
    orders = {c.name: c for c in tables["orders"].columns}
    assert orders["id"].primary_key
    assert orders["customer_id"].references == "customers.id"
    assert not orders["status"].nullable
    assert "table orders(id INTEGER PK, customer_id INTEGER -> customers.id" in schema.to_text()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        SQLLimits(max_rows=0)
    with pytest.raises(ValueError, match="timeout_s"):
        SQLLimits(timeout_s=0)


def test_sql_tools_follow_the_tool_protocol(shop_db: Path) -> None:
    query = SqlQueryTool(str(shop_db))
    schema = SqlSchemaTool(str(shop_db))

    assert isinstance(query, Tool)
    assert isinstance(schema, Tool)
    assert query.name == "sql_query"
    assert schema.name == "sql_schema"
    assert query.timeout_s > query.limits.timeout_s
    assert "sql" in query.args_schema.model_json_schema()["properties"]


async def test_tools_run_in_a_worker_thread(shop_db: Path) -> None:
    query = SqlQueryTool(str(shop_db))
    schema = SqlSchemaTool(str(shop_db))

    rows, tables = await asyncio.gather(
        query.run(SqlQueryArgs(sql="SELECT name FROM products WHERE price > 200")),
        schema.run(SqlSchemaArgs()),
    )

    assert rows.rows == [["27-inch monitor"]]
    assert len(tables.tables) == 4
    assert rows.to_text().endswith("ms)")


async def test_call_tool_validates_arguments(shop_db: Path) -> None:
    tool = SqlQueryTool(str(shop_db))

    with pytest.raises(ToolError, match="invalid arguments for sql_query"):
        await call_tool(tool, {"sql": "SELECT 1", "max_rows": 10**9})
    with pytest.raises(ToolError, match="invalid arguments"):
        await call_tool(tool, {})


async def test_call_tool_enforces_the_tool_timeout() -> None:
    class SlowArgs(BaseModel):
        pass

    class SlowTool:
        name = "slow"
        description = "Sleeps."
        args_schema: type[SlowArgs] = SlowArgs
        timeout_s = 0.05

        async def run(self, args: SlowArgs) -> str:
            await asyncio.sleep(5)
            return "never"

    with pytest.raises(ToolError, match=r"did not finish within 0\.05 s"):
        await call_tool(SlowTool(), {})
