"""The SQL tools on a real PostgreSQL (127.0.0.1:5432, database ``test``): read-only by construction.

Each test gets a throwaway schema with a small table, a sequence and a function that writes; the
schema is dropped afterwards. Set ``GENAI_TEST_POSTGRES_URL`` to use another server.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from genai_factory.agents.sql import execute_select, read_schema
from genai_factory.agents.sql_guard import SQLRejected
from genai_factory.agents.sql_results import SQLLimits, SQLTimeout
from genai_factory.exceptions import ToolError

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.integration

URL = os.environ.get("GENAI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FAST = SQLLimits(max_rows=50, timeout_s=0.5)


@dataclass
class Scratch:
    url: str
    schema: str

    def count(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.schema}.items").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def pg() -> Iterator[Scratch]:
    try:
        admin = psycopg.connect(URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {URL}: {exc}")
    schema = f"genai_sqltool_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(
            f"CREATE TABLE {schema}.items (id int PRIMARY KEY, name text NOT NULL, "
            f"price numeric(10, 2), added date)"
        )
        admin.execute(
            f"CREATE TABLE {schema}.sales (id int PRIMARY KEY, "
            f"item_id int REFERENCES {schema}.items (id), qty int)"
        )
        admin.execute(
            f"INSERT INTO {schema}.items VALUES (1, 'pen', 1.50, '2024-01-02'), "
            f"(2, 'ink', 12.00, '2024-02-03'), (3, 'pad', NULL, NULL)"
        )
        admin.execute(f"CREATE SEQUENCE {schema}.seq")
        admin.execute(
            f"CREATE FUNCTION {schema}.sneaky() RETURNS int LANGUAGE sql VOLATILE AS "
            f"$$ INSERT INTO {schema}.items VALUES (99, 'evil', 0, NULL) RETURNING id $$"
        )
        try:
            yield Scratch(URL, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_select_returns_json_safe_rows(pg: Scratch) -> None:
    result = execute_select(
        pg.url, f"SELECT id, Name, price, added FROM {pg.schema}.Items ORDER BY id"
    )

    assert result.columns == ["id", "name", "price", "added"]
    assert result.rows == [
        [1, "pen", 1.5, "2024-01-02"],
        [2, "ink", 12, "2024-02-03"],
        [3, "pad", None, None],
    ]
    assert (result.row_count, result.truncated) == (3, False)


def test_rows_are_capped_with_a_server_side_cursor(pg: Scratch) -> None:
    result = execute_select(pg.url, "SELECT g FROM generate_series(1, 100000) AS g", FAST)

    assert (result.row_count, result.truncated) == (50, True)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM generate_series(1, 1000000000000) AS g",
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    ],
)
def test_runaway_queries_hit_the_statement_timeout(pg: Scratch, sql: str) -> None:
    started = time.monotonic()

    with pytest.raises(SQLTimeout):
        execute_select(pg.url, sql, FAST)

    assert time.monotonic() - started < 3.0


def test_hostile_list_is_refused_and_nothing_changes(
    pg: Scratch, hostile_list: list[tuple[str, str]]
) -> None:
    for sql, _ in hostile_list:
        with pytest.raises(SQLRejected):
            execute_select(pg.url, sql.replace("customers", f"{pg.schema}.items"), FAST)

    assert pg.count() == 3


def test_read_only_transaction_stops_writes_the_parser_cannot_see(pg: Scratch) -> None:
    """A user function that writes passes the parser; the read-only transaction refuses it."""
    with pytest.raises(SQLRejected) as info:
        execute_select(pg.url, f"SELECT {pg.schema}.sneaky()", FAST)

    assert info.value.reason == "write_attempt"
    assert pg.count() == 3


def test_engine_layers_alone_refuse_writes(pg: Scratch) -> None:
    from genai_factory.agents.sql_postgres import run_postgres_query

    with pytest.raises(SQLRejected):
        run_postgres_query(pg.url, f"SELECT nextval('{pg.schema}.seq')", FAST)
    for sql in (
        f"DELETE FROM {pg.schema}.items",
        f"SELECT 1; DELETE FROM {pg.schema}.items",
        f"CREATE TABLE {pg.schema}.x (a int)",
        "SET statement_timeout = 0",
    ):
        with pytest.raises(ToolError):
            run_postgres_query(pg.url, sql, FAST)

    assert pg.count() == 3


def test_schema_lists_tables_keys_and_references(pg: Scratch) -> None:
    schema = read_schema(pg.url)

    tables = {t.name: t for t in schema.tables}
    sales = {c.name: c for c in tables[f"{pg.schema}.sales"].columns}
    assert sales["id"].primary_key
    assert sales["item_id"].references == "items.id"
    assert [c.name for c in tables[f"{pg.schema}.items"].columns] == [
        "id",
        "name",
        "price",
        "added",
    ]


def test_unreachable_server_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="cannot connect"):
        execute_select("postgresql://nobody@127.0.0.1:1/none", "SELECT 1", FAST)


def test_cli_runs_against_postgres(pg: Scratch) -> None:
    from typer.testing import CliRunner

    from genai_factory.agents.cli import tools_app

    runner = CliRunner()
    ok = runner.invoke(
        tools_app, ["sql", "--db", pg.url, f"SELECT name FROM {pg.schema}.items ORDER BY id"]
    )
    refused = runner.invoke(tools_app, ["sql", "--db", pg.url, "SELECT pg_sleep(30)"])

    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[2] == "pen"
    assert refused.exit_code == 2
    assert refused.stderr == "rejected: forbidden_function (pg_sleep)\n"
