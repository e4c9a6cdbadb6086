"""Questions about ``examples/shop.db`` asked through the service, as a user asks them.

Starts the service in process on its embedded defaults (the bundled model and database; auth off)
with ``agents.adapter`` set by ``--adapter`` (``default``, ``shipped``, ``none`` or a GGUF file),
then asks each question of ``--questions`` (JSONL rows with ``question`` and ``expected``, or
``sql`` whose single value on the database is the expected one) through
``POST /v1/assistant/generate`` with ``"mode": "agent"``. A question counts when the answer states
the expected value (numbers within 0.01, text case-insensitively, as ``bench/agent_shop.py``
checks); ``queried`` also reports whether a statement the agent ran returns the value when run
again on the database. Run it alone (it computes on both cores)::

    .venv/bin/python bench/agent_shop_service.py                       # the default service
    .venv/bin/python bench/agent_shop_service.py --adapter run/adapter.gguf --json

``bench/agent_shop_more.jsonl`` (the default) holds 12 questions that are neither among the 16 of
``bench/agent_shop.py`` nor, word for word, among the questions ``train agent-data`` writes for the
shop database when it is given as ``--exclude`` (it has no SQL, so only the questions are kept
out; their queries may be trained on in other words).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_shop import SHOP_DB, contains_value, expected_value
from genai_factory.config import Settings
from genai_factory.service import create_app

MORE = Path(__file__).resolve().parent / "agent_shop_more.jsonl"


def read_questions(path: Path) -> list[tuple[str, object]]:
    """(question, expected value) of each JSONL row."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        expected = row["expected"] if "expected" in row else expected_value(row["sql"])
        found.append((str(row["question"]), expected))
    return found


def returns_value(statements: list[str], expected: object) -> bool:
    """Whether one of ``statements``, run again read-only on the shop database, returns it."""
    with sqlite3.connect(f"file:{SHOP_DB}?mode=ro", uri=True) as conn:
        for sql in statements:
            try:
                rows = conn.execute(sql).fetchmany(50)
            except sqlite3.Error:
                continue
            cells = " ".join(str(cell) for row in rows for cell in row)
            if contains_value(cells, expected):
                return True
    return False


def ask_all(settings: Settings, questions: list[tuple[str, object]]) -> list[dict[str, Any]]:
    results = []
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 900
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"service not ready: {client.get('/readyz').json()}")
            time.sleep(1)
        for question, expected in questions:
            started = time.perf_counter()
            response = client.post(
                "/v1/assistant/generate", json={"query": question, "mode": "agent"}
            )
            body = response.json()
            answer = str(body.get("answer", body))
            # the statements the model wrote (not those the agent ran by itself before its first call)
            statements = [
                str((step.get("input") or {}).get("sql", ""))
                for step in body.get("steps") or []
                if step.get("tool") == "sql_query" and not step.get("automatic")
            ]
            results.append(
                {
                    "question": question,
                    "expected": expected,
                    "answer": answer,
                    "ok": contains_value(answer, expected),
                    "queried": returns_value(statements, expected),
                    "sql": statements,
                    "route": body.get("route"),
                    "stop_reason": body.get("stop_reason"),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--adapter", default="default", help="agents.adapter: default, shipped, none or a file"
    )
    parser.add_argument("--questions", type=Path, default=MORE, help="JSONL of the questions")
    parser.add_argument("--data-dir", type=Path, default=Path(".genai/agent-shop-bench"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=args.data_dir,
        agents={"adapter": args.adapter},
        auth={"enabled": False},
    )
    started = time.perf_counter()
    results = ask_all(settings, read_questions(args.questions))
    good = sum(r["ok"] for r in results)
    queried = sum(r["queried"] for r in results)
    if args.json:
        print(
            json.dumps(
                {"adapter": args.adapter, "ok": good, "of": len(results), "results": results}
            )
        )
        return
    for r in results:
        mark = "OK  " if r["ok"] else "MISS"
        print(
            f"{mark} {r['question']}\n     expected {r['expected']!r}; sql {r['sql']}\n"
            f"     -> {r['answer'][:200]!r} ({r['stop_reason']}, {r['seconds']} s)"
        )
    median = statistics.median(r["seconds"] for r in results)
    print(
        f"adapter={args.adapter}: {good}/{len(results)} answers state the value; a statement "
        f"returned it {queried}/{len(results)}; median {median:.1f} s; "
        f"{time.perf_counter() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()
