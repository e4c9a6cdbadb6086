"""Python heap growth per request, in process: the soak's traffic mix against one service.

The service (the priced fake model, fake embeddings, SQLite stores, auth and guards off) answers the
soak's mix in cycles: a generate in one of four sessions, a streamed RAG generate, a chat
completion, a generate then its feedback (uploads are made once, before). After ``--warm-up``
cycles, ``tracemalloc`` follows the Python heap; at every ``--every`` cycles the garbage is
collected and the traced total recorded. A heap that grows with the number of requests keeps
something per request: the report gives the growth per 1,000 cycles between the first and the last
checkpoint, the allocation sites that grew most, and what the fake model's own call log holds.

Allocator effects (RSS beyond the Python heap) are not measured here: see ``bench/soak.py``.

    .venv/bin/python bench/memory_growth.py [--cycles 600] [--every 100] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from genai_factory.config import load_settings
from genai_factory.observability.logging import configure_logging
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel

MODEL = "fake-priced"
PRICING = {MODEL: {"input_per_million": 10.0, "output_per_million": 20.0}}
SESSIONS = 4


def _settings(data_dir: Path) -> Any:
    return load_settings(
        data_dir=data_dir,
        llm={"provider": "fake", "model": MODEL, "max_tokens": 16, "pricing": PRICING},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        safety={"enabled": False},
    )


def _upload(client: TestClient) -> None:
    for session in range(SESSIONS):
        for revision in (3, 8):
            text = f"# Note {session}-{revision}\n\nPumps and valves, revision {revision}.\n"
            name = f"note-{session}-{revision}.md"
            files = {"file": (name, text.encode(), "text/markdown")}
            client.post("/v1/documents", files=files).raise_for_status()


def _cycle(client: TestClient, step: int) -> None:
    """One round of the soak's mix (uploads aside): five requests, four model answers."""
    generate = "/v1/assistant/generate"
    body = {"query": "How do pumps work?", "mode": "chat", "session_id": f"s{step % SESSIONS}"}
    client.post(generate, json=body).raise_for_status()
    client.post(
        generate, json={"query": "How do valves work?", "mode": "rag", "stream": True}
    ).raise_for_status()
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    client.post("/v1/chat/completions", json=chat).raise_for_status()
    answered = client.post(generate, json={"query": "Rate me", "mode": "chat"})
    answered.raise_for_status()
    feedback = {"trace_id": answered.json()["trace_id"], "rating": 1}
    client.post("/v1/feedback", json=feedback).raise_for_status()


def _traced_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 2**20


def _top_growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> list[dict[str, Any]]:
    ignored = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = last.filter_traces(ignored).compare_to(first.filter_traces(ignored), "lineno")
    return [
        {
            "site": str(stat.traceback[0]),
            "growth_kb": round(stat.size_diff / 1024, 1),
            "blocks": stat.count_diff,
        }
        for stat in stats[:5]
    ]


def run(cycles: int, every: int, warm_up: int) -> dict[str, Any]:
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="gf-memory-") as tmp:
        app = create_app(_settings(Path(tmp)))
        with TestClient(app) as client:
            _upload(client)
            for step in range(warm_up):
                _cycle(client, step)
            fakes = [o for o in gc.get_objects() if isinstance(o, FakeChatModel)]
            tracemalloc.start(1)
            checkpoints = [[0, round(_traced_mb(), 3)]]
            first = tracemalloc.take_snapshot()
            for step in range(1, cycles + 1):
                _cycle(client, warm_up + step)
                if step % every == 0:
                    checkpoints.append([step, round(_traced_mb(), 3)])
            last = tracemalloc.take_snapshot()
            held_calls = sum(len(fake.calls) for fake in fakes)
            before = _traced_mb()
            for fake in fakes:
                fake.calls.clear()
            call_log_mb = before - _traced_mb()
            tracemalloc.stop()
    (start, low), (end, high) = checkpoints[1], checkpoints[-1]
    slope = (high - low) / (end - start) * 1000 if end > start else 0.0
    return {
        "cycles": cycles,
        "requests": cycles * 5,
        "warm_up_cycles": warm_up,
        "traced_mb_at_cycle": checkpoints,
        "growth_mb_per_1000_cycles": round(slope, 3),
        "top_growth_sites": _top_growth(first, last),
        "fake_model_calls_held": held_calls,
        "fake_model_call_log_mb": round(call_log_mb, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.cycles, args.every, args.warm_up)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, value in report.items():
            print(f"{name:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
