"""What a durable interaction log costs: the same load with ``observability.interaction_log_durable``
on (the default: a response waits for its record's commit) and off (the record is written just
after the response), in interleaved rounds.

Two ``genai-factory serve`` processes run side by side, as ``bench/crash_safety.py`` runs one (the
priced fake model, auth on, a key without limits or budget), each on its own stores: SQLite files
in its own data directory, or its own PostgreSQL schema and Redis prefix (``--backend postgres``).
In each round each service in turn gets ``--clients`` concurrent keep-alive clients for
``--seconds`` (after a warm-up), sending ``/v1/assistant/generate`` (``--stream``: streamed, timed
to the end of the stream). It prints, per mode, the medians over the rounds of the requests per
second, the p50 and the p99 of the request latency, and the errors.

    flock /tmp/genai-cpu.lock .venv/bin/python bench/interaction_durability.py
        [--backend sqlite|postgres] [--rounds 3] [--seconds 8] [--clients 16] [--stream] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx


def _load(name: str) -> ModuleType:
    """A sibling bench module (this file is also loaded by path, outside ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


crash = _load("crash_safety")
MODES = {"durable": "true", "not durable": "false"}


@dataclass
class Round:
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass
class Summary:
    mode: str
    rounds: list[Round]
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _client(
    http: httpx.AsyncClient, body: dict[str, object], stream: bool, until: float, out: list[float]
) -> int:
    errors = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            if stream:
                async with http.stream("POST", "/v1/assistant/generate", json=body) as response:
                    async for _ in response.aiter_bytes():
                        pass
            else:
                response = await http.post("/v1/assistant/generate", json=body)
        except httpx.TransportError:
            errors += 1
            continue
        if response.status_code != 200:
            errors += 1
            continue
        out.append((time.perf_counter() - started) * 1000)
    return errors


async def _load_once(base_url: str, key: str, clients: int, seconds: float, stream: bool) -> Round:
    latencies: list[float] = []
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    body = {"query": "how do pumps move water?", "mode": "chat", "max_tokens": 16, "stream": stream}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=30
    ) as http:
        started = time.perf_counter()
        until = started + seconds
        errors = await asyncio.gather(
            *(_client(http, body, stream, until, latencies) for _ in range(clients))
        )
        elapsed = time.perf_counter() - started
    return Round(
        requests=len(latencies),
        errors=sum(errors),
        requests_per_s=round(len(latencies) / elapsed, 1),
        p50_ms=round(_quantile(latencies, 0.5), 2) if latencies else 0.0,
        p99_ms=round(_quantile(latencies, 0.99), 2) if latencies else 0.0,
    )


def run(
    work_dir: Path,
    *,
    backend: str = "sqlite",
    rounds: int = 3,
    seconds: float = 8.0,
    clients: int = 16,
    warmup: float = 2.0,
    stream: bool = False,
) -> list[Summary]:
    with contextlib.ExitStack() as stack:
        services: dict[str, tuple[Any, str]] = {}
        for mode, durable in MODES.items():
            data_dir = work_dir / mode.replace(" ", "_") / "data"
            data_dir.mkdir(parents=True)
            stores = stack.enter_context(crash.stores_for(backend, data_dir))
            _, key = crash._add_key(stores.database_url, None)
            env = {"GENAI_OBSERVABILITY__INTERACTION_LOG_DURABLE": durable}
            service = crash.Service(data_dir, stores, data_dir.parent / "service.log", env)
            service.start()
            stack.callback(service.stop)
            services[mode] = (service, key)
        for service, key in services.values():
            asyncio.run(_load_once(service.base_url, key, clients, warmup, stream))
        results: dict[str, list[Round]] = {mode: [] for mode in MODES}
        for index in range(rounds):
            order = list(MODES) if index % 2 == 0 else list(reversed(MODES))
            for mode in order:
                service, key = services[mode]
                results[mode].append(
                    asyncio.run(_load_once(service.base_url, key, clients, seconds, stream))
                )
    return [
        Summary(
            mode=mode,
            rounds=measured,
            requests_per_s=round(statistics.median(r.requests_per_s for r in measured), 1),
            p50_ms=round(statistics.median(r.p50_ms for r in measured), 2),
            p99_ms=round(statistics.median(r.p99_ms for r in measured), 2),
            errors=sum(r.errors for r in measured),
        )
        for mode, measured in results.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-durable-") as tmp:
        summaries = run(
            Path(tmp),
            backend=args.backend,
            rounds=args.rounds,
            seconds=args.seconds,
            clients=args.clients,
            stream=args.stream,
        )
    if args.json:
        print(json.dumps([asdict(s) for s in summaries], indent=2))
        return 0
    print(
        f"{args.backend}, {args.clients} clients, {'streamed' if args.stream else 'not streamed'}"
    )
    print(
        f"{'mode':12s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s}  rounds (req/s)"
    )
    for s in summaries:
        per_round = ", ".join(f"{r.requests_per_s}" for r in s.rounds)
        print(
            f"{s.mode:12s} {s.requests_per_s:8.1f} {s.p50_ms:8.2f} {s.p99_ms:8.2f} {s.errors:6d}"
            f"  {per_round}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
