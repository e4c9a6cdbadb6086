"""Shared fixtures of the agent-tool tests: the hostile SQL list and a scratch copy of the shop db.

``HOSTILE_SQL`` holds statements that :func:`check_select` must refuse, each with the reason it is
expected to give (for the SQLite dialect). ``LIMITED_SQL`` holds statements that pass the parser
(they only read) but must be stopped by the engine-level limits. Tests ask for ``hostile_sql``
(one case per statement, via ``pytest_generate_tests``) or ``hostile_list`` (the whole list).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHOP_DB = Path(__file__).parents[2] / "examples" / "shop.db"

HOSTILE_SQL: list[tuple[str, str]] = [
    # writes, in every spelling
    ("DELETE FROM customers", "write_statement"),
    ("dElEtE fRoM customers", "write_statement"),
    ("DELETE FROM customers WHERE id IN (SELECT id FROM customers)", "write_statement"),
    ("UPDATE customers SET name = 'x'", "write_statement"),
    ("update\tcustomers\nset name='x' where 1", "write_statement"),
    ("INSERT INTO customers VALUES (99, 'x', 'x@x', 'XX', '2024-01-01')", "write_statement"),
    ("INSERT OR IGNORE INTO customers (id) VALUES (1)", "write_statement"),
    ("INSERT OR REPLACE INTO customers SELECT * FROM customers", "write_statement"),
    ("INSERT INTO orders SELECT * FROM orders ON CONFLICT DO NOTHING", "write_statement"),
    ("REPLACE INTO customers VALUES (1, 'x', 'y', 'z', '2024-01-01')", "unsupported_statement"),
    ("UPSERT INTO customers VALUES (1)", "parse_error"),
    # schema changes
    ("DROP TABLE customers", "schema_change"),
    ("drop table if exists order_items", "schema_change"),
    ("CREATE TABLE x (a)", "schema_change"),
    ("CREATE TEMP TABLE x AS SELECT * FROM customers", "schema_change"),
    ("CREATE TEMPORARY VIEW v AS SELECT 1", "schema_change"),
    ("CREATE INDEX i ON customers (name)", "schema_change"),
    (
        "CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM customers; END",
        "multiple_statements",
    ),
    ("CREATE VIRTUAL TABLE f USING fts5(a)", "schema_change"),
    ("ALTER TABLE customers ADD COLUMN x TEXT", "schema_change"),
    ("ALTER TABLE customers RENAME TO c2", "schema_change"),
    # pragmas, attachments, maintenance
    ("PRAGMA writable_schema = ON", "pragma"),
    ("pragma query_only = off", "pragma"),
    ("PRAGMA journal_mode = WAL", "pragma"),
    ("PRAGMA main.user_version = 7", "pragma"),
    ("PRAGMA table_info(customers)", "pragma"),
    ("ATTACH DATABASE '/tmp/genai_evil.db' AS evil", "attach"),
    ("attach '/tmp/genai_evil.db' as evil", "attach"),
    ("DETACH DATABASE main", "attach"),
    ("VACUUM", "unsupported_statement"),
    ("VACUUM INTO '/tmp/genai_evil_copy.db'", "unsupported_statement"),
    ("ANALYZE", "not_a_query"),
    ("ANALYZE customers", "not_a_query"),
    ("REINDEX", "not_a_query"),
    ("REINDEX customers", "not_a_query"),
    ("EXPLAIN SELECT 1", "unsupported_statement"),
    ("EXPLAIN QUERY PLAN DELETE FROM customers", "unsupported_statement"),
    # transactions
    ("BEGIN", "transaction"),
    ("BEGIN IMMEDIATE TRANSACTION", "transaction"),
    ("COMMIT", "transaction"),
    ("END", "not_a_query"),
    ("ROLLBACK", "transaction"),
    ("SAVEPOINT s1", "not_a_query"),
    ("RELEASE SAVEPOINT s1", "parse_error"),
    # stacked statements and comment tricks
    ("SELECT 1; DELETE FROM customers", "multiple_statements"),
    ("SELECT 1;DROP TABLE customers;--", "multiple_statements"),
    (
        "SELECT * FROM customers WHERE id = 1; UPDATE customers SET name = 'x'",
        "multiple_statements",
    ),
    ("SELECT 1 /* ; */ ; DELETE FROM customers", "multiple_statements"),
    ("SELECT 1 UNION SELECT 2; ATTACH 'x.db' AS x", "multiple_statements"),
    ("/* just a comment */ DELETE FROM customers", "write_statement"),
    ("-- SELECT 1\nDELETE FROM customers", "write_statement"),
    ("SELECT 1 -- harmless */\n; DROP TABLE customers", "multiple_statements"),
    ("SELECT 1\x00; DROP TABLE customers", "nul_byte"),
    # writes hidden in CTEs and subqueries
    ("WITH x AS (DELETE FROM customers RETURNING *) SELECT * FROM x", "write_statement"),
    (
        "WITH x AS (INSERT INTO products (id) VALUES (50) RETURNING id) SELECT * FROM x",
        "write_statement",
    ),
    ("WITH x AS (UPDATE customers SET name = 'a' RETURNING *) SELECT 1", "write_statement"),
    ("WITH x AS (SELECT 1) DELETE FROM customers", "write_statement"),
    ("WITH x AS (SELECT 1) INSERT INTO customers SELECT * FROM customers", "write_statement"),
    ("WITH RECURSIVE x AS (SELECT 1) UPDATE products SET price = 0", "write_statement"),
    ("SELECT * FROM (DELETE FROM customers RETURNING *)", "parse_error"),
    ("SELECT * INTO backup FROM customers", "select_into"),
    ("SELECT 1 FROM customers FOR UPDATE", "locking_clause"),
    # dangerous functions and tables
    ("SELECT load_extension('/tmp/evil.so')", "forbidden_function"),
    ("SELECT LOAD_EXTENSION('/tmp/evil.so', 'entry')", "forbidden_function"),
    ("SELECT \"load_extension\"('x')", "forbidden_function"),
    ("SELECT name FROM customers WHERE load_extension('x') IS NULL", "forbidden_function"),
    ("SELECT readfile('/etc/passwd')", "forbidden_function"),
    ("SELECT writefile('/tmp/genai_evil', 'x')", "forbidden_function"),
    ("SELECT edit('x')", "forbidden_function"),
    ("SELECT fts3_tokenizer('simple')", "forbidden_function"),
    ("SELECT * FROM pragma_table_info('customers')", "forbidden_function"),
    ("SELECT * FROM pragma_database_list", "forbidden_relation"),
    ("SELECT * FROM sqlite_dbpage", "forbidden_relation"),
    ("SELECT * FROM main.sqlite_dbpage", "forbidden_relation"),
    ("SELECT * FROM fsdir('/')", "forbidden_function"),
    ("SELECT randomblob(1000000000)", "oversized_argument"),
    ("SELECT printf('%.*c', 2000000000, 'x')", "costly_argument"),
    ("SELECT printf('%.2000000000c', 'x')", "costly_argument"),
    ("SELECT printf(name, 1) FROM customers", "costly_argument"),
    ("SELECT format('%' || '.*c', 2000000000, 'x')", "costly_argument"),
    ("SELECT ltrim(name, email || name) FROM customers", "costly_argument"),
    ("SELECT trim(hex(zeroblob(90000)), hex(zeroblob(20000)) || 'x')", "costly_argument"),
    ("SELECT zeroblob(2147483647)", "oversized_argument"),
    ("SELECT pg_sleep(10)", "forbidden_function"),
    ("SELECT pg_catalog.pg_sleep(10)", "forbidden_function"),
    ("SELECT pg_read_file('/etc/passwd')", "forbidden_function"),
    ("SELECT lo_import('/etc/passwd')", "forbidden_function"),
    ("SELECT set_config('statement_timeout', '0', false)", "forbidden_function"),
    ("SELECT pg_advisory_lock(1)", "forbidden_function"),
    ("SELECT query_to_xml('DELETE FROM customers', true, true, '')", "forbidden_function"),
    ("SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(a INT)", "forbidden_function"),
    ("SELECT nextval('s')", "forbidden_function"),
    ("SELECT * FROM pg_authid", "forbidden_relation"),
    # parameters, assignments, statements that are not a query
    ("SELECT ?", "parameters"),
    ("SELECT * FROM customers WHERE id = :id", "parameters"),
    ("VALUES (1)", "not_a_query"),
    ("SET statement_timeout = 0", "set_statement"),
    ("COPY customers TO '/tmp/genai_evil.csv'", "not_a_query"),
    ("TRUNCATE TABLE customers", "schema_change"),
    ("GRANT ALL ON customers TO PUBLIC", "not_a_query"),
    ("CALL evil()", "unsupported_statement"),
    ("DO $$BEGIN DELETE FROM customers; END$$", "parse_error"),
    ("LOCK TABLE customers", "parse_error"),
    ("SHOW TABLES", "unsupported_statement"),
    ("MERGE INTO customers USING products ON 1 = 1 WHEN MATCHED THEN DELETE", "write_statement"),
    # empty and oversized input
    ("", "empty"),
    ("   \n\t", "empty"),
    (";", "empty"),
    ("-- only a comment", "empty"),
    ("SELECT " + " + ".join(["1"] * 8000), "too_long"),
    ("SELECT " + "(" * 2000 + "1" + ")" * 2000, "too_complex"),
    ("ＤＥＬＥＴＥ FROM customers", "parse_error"),
]

LIMITED_SQL: list[str] = [
    # runaway recursive CTEs
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT max(x) FROM r",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r ORDER BY x DESC",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT * FROM r",
    "WITH RECURSIVE r(s) AS (SELECT 'ab' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT group_concat(x) FROM r",
    # huge cross joins
    "SELECT count(*) FROM order_items a, order_items b, order_items c, order_items d, "
    "order_items e, order_items f, order_items g",
    "SELECT * FROM customers a, customers b, customers c, customers d, customers e, customers f, "
    "customers g, customers h ORDER BY a.name, h.email",
    "SELECT * FROM customers a CROSS JOIN products b CROSS JOIN orders c CROSS JOIN order_items d",
    # memory amplification
    "SELECT randomblob(1000 * 1000 * 1000)",
    "SELECT zeroblob(2000) || zeroblob(1000000 * 5)",
    "SELECT printf('%.10000c', 'x') || randomblob(1000 * 1000)",
    "SELECT customers.name LIKE '%' || replace(hex(zeroblob(1000)), '0', 'a') || 'b' FROM customers",
    "SELECT count(*) FROM (SELECT DISTINCT a.order_id, b.order_id, c.order_id, d.order_id, "
    "e.order_id, f.order_id FROM order_items a, order_items b, order_items c, order_items d, "
    "order_items e, order_items f)",
    "SELECT replace(replace(replace(replace(hex(zeroblob(1000)), '0', '00000000'), '0', "
    "'00000000'), '0', '00000000'), '0', '00000000')",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hostile_sql" in metafunc.fixturenames:
        ids = [f"{i:03d}-{reason}" for i, (_, reason) in enumerate(HOSTILE_SQL)]
        metafunc.parametrize("hostile_sql", HOSTILE_SQL, ids=ids)
    if "limited_sql" in metafunc.fixturenames:
        metafunc.parametrize(
            "limited_sql", LIMITED_SQL, ids=[f"{i:02d}" for i in range(len(LIMITED_SQL))]
        )


@pytest.fixture
def hostile_list() -> list[tuple[str, str]]:
    return list(HOSTILE_SQL)


@pytest.fixture
def limited_list() -> list[str]:
    return list(LIMITED_SQL)


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    """A private copy of ``examples/shop.db`` in its own directory."""
    target = tmp_path / "db" / "shop.db"
    target.parent.mkdir()
    shutil.copyfile(SHOP_DB, target)
    return target
