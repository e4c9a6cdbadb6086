"""Every executable Spider dev gold SELECT passes ``sql_query`` and returns the same rows.

The data set (German-translated MachineSpider dev, 20 SQLite databases) lives in
``../shared/datasets/spider`` beside the repository; see its README.txt. Each gold query with
``exec_ok: true`` is run twice: directly on a read-only connection, and through the tool (guard,
normalised SQL, engine limits). Rows must match in order when the query has ``ORDER BY`` and as a
multiset otherwise.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from pydantic import JsonValue

from genai_factory.agents.sql import execute_select
from genai_factory.agents.sql_results import SQLLimits, json_safe

SPIDER = Path(__file__).parents[2].parent / "shared" / "datasets" / "spider"
#: Default value-size limit; rows, time and result size generous so that nothing is truncated.
GENEROUS = SQLLimits(max_rows=100_000, timeout_s=30.0, max_result_bytes=500_000_000)

pytestmark = pytest.mark.skipif(
    not (SPIDER / "dev_flat.jsonl").is_file(),
    reason=f"Spider dev set not found at {SPIDER} (shared/datasets/spider beside the repository)",
)


def _gold_queries() -> list[dict[str, object]]:
    lines = (SPIDER / "dev_flat.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["exec_ok"]]


def _multiset(rows: list[list[JsonValue]]) -> Counter[str]:
    return Counter(json.dumps(row, sort_keys=True) for row in rows)


def test_every_executable_gold_select_is_allowed_and_returns_the_same_rows() -> None:
    gold = _gold_queries()
    connections: dict[Path, sqlite3.Connection] = {}
    mismatches: list[str] = []
    try:
        for record in gold:
            db_id, sql = str(record["db_id"]), str(record["gold_sql"])
            path = SPIDER / "database" / db_id / f"{db_id}.sqlite"
            if path not in connections:
                connections[path] = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
            expected = [[json_safe(v) for v in row] for row in connections[path].execute(sql)]

            result = execute_select(str(path), sql, GENEROUS)  # raises if refused

            assert not result.truncated, sql
            same = (
                result.rows == expected
                if "order by" in sql.lower()
                else _multiset(result.rows) == _multiset(expected)
            )
            if not same:
                mismatches.append(f"{record['idx']}: {sql}")
    finally:
        for conn in connections.values():
            conn.close()

    assert not mismatches, "\n".join(mismatches)
    assert len(gold) == 978  # the README's count of executable gold queries
