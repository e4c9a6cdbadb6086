"""``genai-factory tools sql|schema``: exit codes and one-line messages, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from genai_factory.agents.cli import tools_app

runner = CliRunner()


def test_allowed_query_prints_rows_and_exits_0(shop_db: Path) -> None:
    result = runner.invoke(
        tools_app, ["sql", "--db", str(shop_db), "SELECT id, name FROM customers ORDER BY id"]
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split(" | ") == ["id", "name"]
    assert "Ada Lovelace" in lines[2]
    assert lines[-1].startswith("(8 rows;")
    assert result.stderr == ""


def test_json_output_is_one_object(shop_db: Path) -> None:
    result = runner.invoke(
        tools_app,
        ["sql", "--db", str(shop_db), "--json", "--max-rows", "2", "SELECT name FROM products"],
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["columns"] == ["name"]
    assert (payload["row_count"], payload["truncated"]) == (2, True)


def test_refused_query_prints_the_reason_and_exits_2(shop_db: Path) -> None:
    result = runner.invoke(tools_app, ["sql", "--db", str(shop_db), "dElEtE FROM customers"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "rejected: write_statement (DELETE)\n"


def test_unparsed_statement_is_refused_without_parser_chatter(shop_db: Path) -> None:
    result = runner.invoke(tools_app, ["sql", "--db", str(shop_db), "VACUUM INTO '/tmp/x.db'"])

    assert result.exit_code == 2
    assert result.stderr == "rejected: unsupported_statement (VACUUM)\n"


def test_time_limit_is_a_one_line_error_and_exits_1(shop_db: Path) -> None:
    runaway = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT max(x) FROM r"

    result = runner.invoke(tools_app, ["sql", "--db", str(shop_db), "--timeout", "0.2", runaway])

    assert result.exit_code == 1
    assert result.stderr == "error: query stopped at the 0.2 s time limit\n"


def test_missing_database_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(tools_app, ["sql", "--db", str(tmp_path / "nope.db"), "SELECT 1"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: no SQLite database file at")
    assert "Traceback" not in result.output


def test_schema_lists_tables(shop_db: Path) -> None:
    text = runner.invoke(tools_app, ["schema", "--db", str(shop_db)])
    as_json = runner.invoke(tools_app, ["schema", "--db", str(shop_db), "--json"])

    assert text.exit_code == 0, text.output
    assert "table customers(id INTEGER PK, name TEXT" in text.stdout
    assert as_json.exit_code == 0
    assert [t["name"] for t in json.loads(as_json.stdout)["tables"]] == [
        "customers",
        "order_items",
        "orders",
        "products",
    ]
