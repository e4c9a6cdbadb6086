"""``check_select``: one read-only query passes (normalised), everything else is refused."""

from __future__ import annotations

import pytest
import sqlglot

from genai_factory.agents.sql_guard import (
    SQLRejected,
    check_select,
    function_denied,
    relation_denied,
)
from genai_factory.exceptions import InvalidRequestError

ALLOWED: list[tuple[str, str]] = [
    ("SELECT 1", "sqlite"),
    ("select name from customers where country = 'GB' order by name", "sqlite"),
    ("SELECT count(*) FROM sänger", "sqlite"),
    ("SELECT * FROM customers;", "sqlite"),
    ("SELECT 1 -- trailing comment", "sqlite"),
    ("/* leading comment */ SELECT 1", "sqlite"),
    ("(SELECT 1)", "sqlite"),
    ("SELECT 1 UNION SELECT 2 INTERSECT SELECT 2 EXCEPT SELECT 3", "sqlite"),
    ("WITH big AS (SELECT * FROM products WHERE price > 50) SELECT name FROM big", "sqlite"),
    (
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) "
        "SELECT x FROM r",
        "sqlite",
    ),
    (
        "SELECT c.name, sum(i.quantity * i.unit_price) AS spent FROM customers AS c "
        "JOIN orders AS o ON o.customer_id = c.id LEFT JOIN order_items AS i ON i.order_id = o.id "
        "GROUP BY c.id HAVING spent > 10 ORDER BY spent DESC LIMIT 3 OFFSET 1",
        "sqlite",
    ),
    (
        "SELECT name, rank() OVER (PARTITION BY category ORDER BY price DESC) FROM products",
        "sqlite",
    ),
    ("SELECT CASE WHEN price > 100 THEN 'high' ELSE 'low' END FROM products", "sqlite"),
    ("SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders)", "sqlite"),
    ("SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id)", "sqlite"),
    ("SELECT strftime('%Y', ordered_at), date('now', '-1 day') FROM orders", "sqlite"),
    ("SELECT json_extract('{\"a\": 1}', '$.a'), value FROM json_each('[1, 2]')", "sqlite"),
    ("SELECT name FROM customers WHERE name LIKE 'A%' OR name GLOB '*r*'", "sqlite"),
    ("SELECT CAST(price AS INTEGER), typeof(price), x'00ff' FROM products", "sqlite"),
    ("SELECT randomblob(16), zeroblob(100), hex(randomblob(8))", "sqlite"),
    ("SELECT name FROM sqlite_master WHERE type = 'table'", "sqlite"),
    ("SELECT 'a'';DROP TABLE customers;--' AS s", "sqlite"),
    ('SELECT "France" AS land', "sqlite"),
    ("SELECT Name FROM Public.Users WHERE ID = 1", "postgres"),
    ("SELECT generate_series(1, 3)", "postgres"),
    ("SELECT now() - interval '1 hour', date_trunc('day', now())", "postgres"),
    ("SELECT DISTINCT ON (a) a FROM t ORDER BY a, b DESC NULLS LAST", "postgres"),
    ("SELECT a FROM t WHERE a = ANY(ARRAY[1, 2]) AND b ILIKE 'x%'", "postgres"),
    ("SELECT string_agg(name, ', ' ORDER BY name) FROM t", "postgres"),
    ("SELECT x FROM unnest(ARRAY[1, 2]) AS x", "postgres"),
    ("SELECT $$a;b$$", "postgres"),
    ("SELECT lpad(code, 8, '0'), repeat('-', 20) FROM t", "postgres"),
    ("SELECT user, current_user", "postgres"),
]


@pytest.mark.parametrize(("sql", "dialect"), ALLOWED)
def test_read_only_query_is_allowed_and_normalised(sql: str, dialect: str) -> None:
    checked = check_select(sql, dialect)

    statements = sqlglot.parse(checked, dialect=dialect)
    assert len(statements) == 1
    assert check_select(checked, dialect) == checked, "normalising twice changes nothing"


def test_hostile_statement_is_rejected_with_its_reason(hostile_sql: tuple[str, str]) -> None:
    sql, reason = hostile_sql

    with pytest.raises(SQLRejected) as info:
        check_select(sql, "sqlite")

    assert info.value.reason == reason, info.value.message


def test_hostile_statement_is_rejected_for_postgres_too(hostile_sql: tuple[str, str]) -> None:
    sql, _ = hostile_sql

    with pytest.raises(SQLRejected):
        check_select(sql, "postgres")


def test_rejection_is_a_caller_error_with_reason_and_detail() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_select("DROP TABLE customers", "sqlite")

    assert isinstance(info.value, SQLRejected)
    assert (info.value.reason, info.value.detail) == ("schema_change", "DROP")
    assert info.value.message == "SQL rejected: schema_change (DROP)"


def test_comments_are_dropped_from_the_statement_that_runs() -> None:
    assert check_select("SELECT 1 -- */ DROP TABLE customers", "sqlite") == "SELECT 1"
    assert check_select("SELECT /* ; DELETE FROM t */ 1", "postgres") == "SELECT 1"


def test_string_literals_stay_literals() -> None:
    checked = check_select("SELECT 'x'';DELETE FROM customers;--'", "sqlite")

    assert checked == "SELECT 'x'';DELETE FROM customers;--'"


def test_identifiers_are_quoted_and_folded_like_the_engine_would() -> None:
    assert check_select("SELECT Name FROM Users", "sqlite") == 'SELECT "Name" FROM "Users"'
    assert check_select("SELECT Name FROM Users", "postgres") == 'SELECT "name" FROM "users"'
    assert check_select('SELECT "Name" FROM "Users"', "postgres") == 'SELECT "Name" FROM "Users"'
    assert check_select("SELECT ÄÖ FROM t", "postgres") == 'SELECT "ÄÖ" FROM "t"'


def test_type_names_cannot_smuggle_text_into_the_rendered_sql() -> None:
    with pytest.raises(SQLRejected) as info:
        check_select('SELECT CAST(1 AS "x; DROP TABLE customers")', "sqlite")

    assert info.value.reason == "unsupported_syntax"


@pytest.mark.parametrize(
    ("sql", "dialect", "allowed"),
    [
        ("SELECT randomblob(200000)", "sqlite", True),
        ("SELECT randomblob(200001)", "sqlite", False),
        ("SELECT zeroblob(1e9)", "sqlite", False),
        ("SELECT randomblob(n) FROM t", "sqlite", True),  # SQLite's length limit stops it
        ("SELECT repeat('x', 10)", "postgres", True),
        ("SELECT repeat('x', 10000000)", "postgres", False),
        ("SELECT repeat('x', n) FROM t", "postgres", False),  # no engine limit: literal only
        ("SELECT rpad(a, (10)) FROM t", "postgres", True),
        ("SELECT lpad(a, 300000) FROM t", "postgres", False),
    ],
)
def test_functions_that_allocate_by_size(sql: str, dialect: str, allowed: bool) -> None:
    if allowed:
        check_select(sql, dialect)
    else:
        with pytest.raises(SQLRejected) as info:
            check_select(sql, dialect)
        assert info.value.reason == "oversized_argument"


def test_limits_on_input_size_are_configurable() -> None:
    with pytest.raises(SQLRejected) as info:
        check_select("SELECT 12345", "sqlite", max_chars=5)
    assert info.value.reason == "too_long"


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        check_select("SELECT 1", "mysql")


@pytest.mark.parametrize(
    ("name", "denied"),
    [
        ("load_extension", True),
        ("LOAD_EXTENSION", True),
        ("pg_catalog.pg_sleep", True),
        ('"pg_read_file"', True),
        ("lo_export", True),
        ("dblink_exec", True),
        ("pg_try_advisory_lock", True),
        ("sqlite_dbpage", True),
        ("sqlite_version", False),
        ("count", False),
        ("json_each", False),
        ("lower", False),
    ],
)
def test_function_deny_list(name: str, denied: bool) -> None:
    assert function_denied(name) is denied


@pytest.mark.parametrize(
    ("name", "denied"),
    [
        ("sqlite_dbpage", True),
        ("PRAGMA_TABLE_INFO", True),
        ("pg_authid", True),
        ("sqlite_master", False),
        ("customers", False),
    ],
)
def test_relation_deny_list(name: str, denied: bool) -> None:
    assert relation_denied(name) is denied


def test_limited_statements_pass_the_parser(limited_sql: str) -> None:
    """These only read; the engine-level limits must stop them (see test_sql_tool)."""
    check_select(limited_sql, "sqlite")
