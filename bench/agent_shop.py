"""How often does the agent answer questions about ``examples/shop.db`` correctly?

Runs the ReAct agent (JSON-schema actions, SQL tools and calculator) with the embedded model
(SmolLM2-135M-Instruct by llama.cpp) over a fixed set of questions and prints, per question, the
SQL it ran and its answer, then the success rate. The expected answer of each question comes from
its gold SQL run on the same database, so nothing is typed in by hand.

A question counts as **solved** when the run ended with the model's own final answer (no limit
hit), a ``sql_query`` step the model chose returned the expected value, and the answer states it
(numbers within 0.01, text case-insensitively). ``answer contains value`` is also reported without
the other two conditions. Run it alone (it computes on both cores)::

    .venv/bin/python bench/agent_shop.py            # all questions
    .venv/bin/python bench/agent_shop.py --limit 3  # the first three
    .venv/bin/python bench/agent_shop.py --json     # one JSON object per question
    .venv/bin/python bench/agent_shop.py --adapter agent.gguf   # with the agent's LoRA adapter
    .venv/bin/python bench/agent_shop.py --offset 8 --limit 8   # questions 9 to 16
    .venv/bin/python bench/agent_shop.py --questions bench/agent_shop_more.jsonl  # other questions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
import time
from pathlib import Path

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.formats import FormatName
from genai_factory.agents.react import AgentLimits, ReActAgent
from genai_factory.agents.steps import AgentResult
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.llm.llamacpp import LlamaCppModel
from genai_factory.observability.logging import configure_logging

SHOP_DB = Path(__file__).resolve().parents[1] / "examples" / "shop.db"

#: (question, gold SQL). The gold SQL's single value is the expected answer.
QUESTIONS: list[tuple[str, str]] = [
    ("How many customers are there?", "SELECT count(*) FROM customers"),
    ("How many orders are there?", "SELECT count(*) FROM orders"),
    ("How many orders were cancelled?", "SELECT count(*) FROM orders WHERE status = 'cancelled'"),
    ("How many customers are from the US?", "SELECT count(*) FROM customers WHERE country = 'US'"),
    ("What is the price of the Desk lamp?", "SELECT price FROM products WHERE name = 'Desk lamp'"),
    (
        "What is the most expensive product?",
        "SELECT name FROM products ORDER BY price DESC LIMIT 1",
    ),
    ("What is the cheapest product?", "SELECT name FROM products ORDER BY price LIMIT 1"),
    (
        "How many products are in the accessories category?",
        "SELECT count(*) FROM products WHERE category = 'accessories'",
    ),
    ("What is the average product price?", "SELECT avg(price) FROM products"),
    (
        "Which country is Konrad Zuse from?",
        "SELECT country FROM customers WHERE name = 'Konrad Zuse'",
    ),
    (
        "How many orders have the status placed?",
        "SELECT count(*) FROM orders WHERE status = 'placed'",
    ),
    ("What is the total quantity of all order items?", "SELECT sum(quantity) FROM order_items"),
    (
        "How many orders did Ada Lovelace place?",
        "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.name = 'Ada Lovelace'",
    ),
    (
        "What is the email address of Grace Hopper?",
        "SELECT email FROM customers WHERE name = 'Grace Hopper'",
    ),
    (
        "How many distinct product categories are there?",
        "SELECT count(DISTINCT category) FROM products",
    ),
    (
        "What is the total revenue of all delivered orders?",
        "SELECT sum(i.quantity * i.unit_price) FROM order_items i "
        "JOIN orders o ON o.id = i.order_id WHERE o.status = 'delivered'",
    ),
]


def expected_value(sql: str) -> object:
    with sqlite3.connect(f"file:{SHOP_DB}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchone()[0]


def contains_value(answer: str, expected: object) -> bool:
    """Whether ``answer`` states ``expected``: a number within 0.01, or the text itself."""
    if isinstance(expected, int | float):
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*\.?\d*", answer)]
        return any(abs(n - float(expected)) < 0.01 for n in numbers)
    return str(expected).lower() in answer.lower()


def _rows(table_text: str) -> str:
    """The rows of a rendered SQL result, without its header and its ``(N rows; ...)`` footer."""
    return "\n".join(table_text.splitlines()[2:-1])


def judge(result: AgentResult, expected: object) -> dict[str, object]:
    """Solved: the model's own answer states the value, and a query it chose returned it."""
    queried = [
        s
        for s in result.tool_steps("sql_query")
        if s.ok and not s.automatic and contains_value(_rows(s.observation), expected)
    ]
    has_value = contains_value(result.answer, expected)
    return {
        "solved": has_value and bool(queried) and not result.limit_hit,
        "answer_contains_value": has_value,
        "sql": [
            str(s.input.get("sql", "")) for s in result.tool_steps("sql_query") if not s.automatic
        ],
        "steps": len(result.steps),
        "stop_reason": result.stop_reason,
        "tokens": result.usage.total_tokens,
    }


def read_questions(path: Path) -> list[tuple[str, str | tuple[object]]]:
    """JSONL rows with ``question`` and ``sql`` (the gold query) or ``expected`` (the value)."""
    found: list[tuple[str, str | tuple[object]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            gold = row["sql"] if "sql" in row else (row["expected"],)
            found.append((str(row["question"]), gold))
    return found


def write_questions(path: Path) -> int:
    """The questions and gold SQL as JSONL: what ``train agent-data --exclude`` keeps out."""
    rows = [json.dumps({"question": q, "sql": sql}) for q, sql in QUESTIONS]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


async def main(
    limit: int | None,
    as_json: bool,
    action_format: FormatName,
    adapter: Path | None = None,
    offset: int = 0,
    questions_file: Path | None = None,
) -> int:
    configure_logging("warning")
    model = LlamaCppModel(n_threads=2, adapter_path=adapter)
    tools = [SqlSchemaTool(str(SHOP_DB)), SqlQueryTool(str(SHOP_DB)), CalculatorTool()]
    limits = AgentLimits(max_steps=4, timeout_s=900)  # measures the model, not the machine
    agent = ReActAgent(model, tools, action_format=action_format, limits=limits)
    asked = read_questions(questions_file) if questions_file else QUESTIONS
    questions = asked[offset : offset + limit] if limit else asked[offset:]
    solved = contains = 0
    started = time.perf_counter()
    try:
        for question, gold in questions:
            expected = expected_value(gold) if isinstance(gold, str) else gold[0]
            result = await agent.run(question)
            verdict = judge(result, expected)
            solved += bool(verdict["solved"])
            contains += bool(verdict["answer_contains_value"])
            row = {"question": question, "expected": expected, "answer": result.answer, **verdict}
            print(json.dumps(row) if as_json else _line(row), flush=True)
    finally:
        await model.aclose()
    total = len(questions)
    print(
        f"solved {solved}/{total} = {solved / total:.0%}; answer contains the value "
        f"{contains}/{total} = {contains / total:.0%}; {time.perf_counter() - started:.0f} s",
        file=sys.stderr if as_json else sys.stdout,
    )
    return 0


def _line(row: dict[str, object]) -> str:
    mark = "PASS" if row["solved"] else "FAIL"
    answer = str(row["answer"]).replace("\n", " ")[:120]
    return (
        f"{mark} {row['question']}\n     expected {row['expected']!r}; sql {row['sql']}\n"
        f"     answer {answer!r} ({row['stop_reason']}, {row['steps']} steps, {row['tokens']} tokens)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
    parser.add_argument("--json", action="store_true", help="One JSON object per question.")
    parser.add_argument(
        "--format", default="json_staged", choices=["json_staged", "json_schema"], help="Actions."
    )
    parser.add_argument(
        "--offset", type=int, default=0, help="Skip the first N questions (split a long run)."
    )
    parser.add_argument(
        "--adapter", type=Path, default=None, help="A LoRA adapter (GGUF) on the bundled model."
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=None,
        help="Ask the questions of this JSONL (question with sql or expected) instead.",
    )
    parser.add_argument(
        "--write-questions",
        type=Path,
        default=None,
        help="Write the questions and gold SQL as JSONL (for train agent-data --exclude); exit.",
    )
    args = parser.parse_args()
    if args.write_questions is not None:
        print(f"wrote {write_questions(args.write_questions)} questions to {args.write_questions}")
        raise SystemExit(0)
    raise SystemExit(
        asyncio.run(
            main(args.limit, args.json, args.format, args.adapter, args.offset, args.questions)
        )
    )
