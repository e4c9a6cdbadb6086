"""Overhead of the orchestrator over calling its specialists directly, with the fake model.

A three-step question ("What does the guide say the budget error is, and how many customers are
from the US? What is 15% of 240?": documents, SQL on ``examples/shop.db``, calculator) is answered
two ways in interleaved rounds, with the same specialists, the same scripted fake-model replies
and the same tools:

* ``direct`` (the anchor): the three specialists called one after another by hand, with the plan
  made once outside the timing;
* ``orchestrated``: ``Orchestrator.plan`` + ``Orchestrator.run`` (planning, per-step timeouts,
  result screening, step records, context passing, composing the answer).

It prints the median milliseconds of each, their ratio, and the orchestrator's overhead per step:
(median orchestrated - median direct) / 3, and the median of the per-round differences. Target:
at most 2 ms per step.

    .venv/bin/python bench/orchestrator_overhead.py [--rounds 200] [--log-level warning]

The logs go to stderr at ``--log-level`` (``info`` writes every agent and orchestrator step, as the
service does by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.assistant.orchestrator import Orchestrator
from genai_factory.assistant.routing import DataTerms
from genai_factory.assistant.specialists import (
    AgentSpecialist,
    DocumentsSpecialist,
    SpecialistRunner,
    StepInput,
)
from genai_factory.config import SpecialistSettings
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.observability.logging import configure_logging
from genai_factory.safety.gate import RequestSafety
from genai_factory.testing.fakes import FakeChatModel

QUESTION = (
    "What does the guide say the budget error is, and how many customers are from the US? "
    "What is 15% of 240?"
)
SHOP_DB = Path(__file__).resolve().parents[1] / "examples" / "shop.db"
LIMITS = SpecialistSettings(max_steps=4, timeout_s=10.0, token_budget=8000)


def act(tool: str, **tool_input: Any) -> str:
    return json.dumps({"thought": "", "action": tool, "input": tool_input})


REPLIES = [
    "The budget error is 402 budget_exceeded [1].",
    act("sql_query", sql="SELECT count(*) FROM customers WHERE country = 'US'"),
    act("final_answer", answer="There are 3 customers from the US."),
    act("calculator", expression="0.15 * 240"),
    act("final_answer", answer="15% of 240 is 36."),
]


class Searcher:
    def __init__(self) -> None:
        chunk = Chunk(
            id="c1",
            document_id="d1",
            text="A budget that cannot cover the call is refused with 402 budget_exceeded.",
            position=0,
            title="Gateway",
            source="gateway.md",
        )
        self.hits = [ScoredChunk(chunk=chunk, score=0.8)]

    async def search(self, query: str, k: int = 4) -> list[ScoredChunk]:
        return self.hits[:k]


def specialists(model: FakeChatModel) -> dict[Any, SpecialistRunner]:
    db = str(SHOP_DB)
    return {
        "documents": DocumentsSpecialist(
            model, Searcher(), system_prompt="Be brief.", limits=LIMITS
        ),
        "sql": AgentSpecialist("sql", model, [SqlSchemaTool(db), SqlQueryTool(db)], limits=LIMITS),
        "calculator": AgentSpecialist("calculator", model, [CalculatorTool()], limits=LIMITS),
    }


async def main(rounds: int) -> None:
    model = FakeChatModel()
    team = specialists(model)
    orchestrator = Orchestrator(team)
    terms = DataTerms.from_names(["customers", "orders"], ["country", "email"])
    plan = orchestrator.plan(QUESTION, terms)
    assert [s.specialist for s in plan.steps] == ["documents", "sql", "calculator"], plan

    async def direct() -> float:
        model._replies[:] = REPLIES
        mark = time.perf_counter()
        context: list[str] = []
        for step in plan.steps:
            out = await team[step.specialist].run(
                StepInput(step.question, RequestSafety(None), "bench", 160, list(context))
            )
            context.append(out.answer)
        return (time.perf_counter() - mark) * 1000

    async def orchestrated() -> float:
        model._replies[:] = REPLIES
        mark = time.perf_counter()
        made = orchestrator.plan(QUESTION, terms)
        done = await orchestrator.run(made, safety=RequestSafety(None), trace_id="bench")
        elapsed = (time.perf_counter() - mark) * 1000
        assert "36" in done.text and "3 customers" in done.text, done.text
        return elapsed

    for _ in range(10):  # warm-up: imports, sqlite page cache, schema reads
        await direct()
        await orchestrated()
    anchor, measured, differences = [], [], []
    for index in range(rounds):
        if index % 2:  # alternate which arm runs first
            o = await orchestrated()
            d = await direct()
        else:
            d = await direct()
            o = await orchestrated()
        anchor.append(d)
        measured.append(o)
        differences.append(o - d)
    steps = len(plan.steps)
    a, m = statistics.median(anchor), statistics.median(measured)
    print(f"rounds {rounds}, steps per question {steps}")
    print(f"direct (anchor)   median {a:8.3f} ms")
    print(f"orchestrated      median {m:8.3f} ms   ratio {m / a:.3f}")
    print(
        f"overhead per step (median orchestrated - median direct) / {steps}: {(m - a) / steps:.3f} ms"
    )
    print(
        f"overhead per step (median of per-round differences) / {steps}: "
        f"{statistics.median(differences) / steps:.3f} ms   (target <= 2 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--log-level", default="warning")
    arguments = parser.parse_args()
    configure_logging(arguments.log_level)
    asyncio.run(main(arguments.rounds))
