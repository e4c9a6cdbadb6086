"""Soak and scale-out: two replicas on one Redis and one PostgreSQL, mixed traffic, a Redis restart.

Two ``genai-factory serve`` processes (the priced fake model, auth on) share a fresh PostgreSQL
schema (keys, spend ledger, interaction log) and a private ``redis-server`` started here on its own
port (limits and budgets), so restarting it disturbs no one else. Client threads spread over both
replicas send mixed traffic: ``/v1/assistant/generate`` (plain and streamed, in sessions),
``/v1/chat/completions``, document uploads, feedback. One key has a small requests-per-minute
limit (it is meant to get 429s), one a small budget (402s once spent), the others are unbounded.
Halfway through, Redis is stopped and restarted (its data kept on disk off: counters are lost).

Each minute the run records requests, status classes, p50/p99 latency, and each replica's RSS and
open file descriptors. At the end it checks: the budgeted key's ledger spend is within its budget
(across both replicas and the Redis restart), the limited key was refused with 429, requests after
the Redis restart succeed again without restarting the service, and reports memory, descriptor and
p99 drift (last minute against the first). For each 5xx it keeps when the request was sent and
answered and the error body's message: the report counts 5xx per message and lists those answered
later than 5 s after Redis was back, with their times, route and replica.

    flock /tmp/genai-cpu.lock .venv/bin/python bench/soak.py [--minutes 10] [--clients 12] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


crash = _load("crash_safety")


class PrivateRedis:
    """A ``redis-server`` of this run on its own port, without persistence."""

    def __init__(self, work_dir: Path) -> None:
        self.port = crash._free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = work_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self._dir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            )
            if done.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Minute:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ServerError:
    """A 5xx: when its request was sent and answered (monotonic seconds), what, and why."""

    sent: float
    answered: float
    kind: str
    status: str
    message: str


KINDS = ("generate in a session", "generate streamed", "chat completion", "upload", "feedback")


@dataclass
class Traffic:
    minutes: list[Minute] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    server_errors: list[ServerError] = field(default_factory=list)

    def note(self, status: str, latency: float, *, kind: str = "", message: str = "") -> None:
        answered = time.monotonic()
        index = int((answered - self.started) // 60)
        with self.lock:
            if status.startswith("5"):
                error = ServerError(answered - latency, answered, kind, status, message)
                self.server_errors.append(error)
            while len(self.minutes) <= index:
                self.minutes.append(Minute())
            minute = self.minutes[index]
            minute.requests += 1
            minute.statuses[status] += 1
            if status.startswith("2"):
                minute.latencies.append(latency)


def _one(client: httpx.Client, base: str, kind: int, worker: int, step: int) -> httpx.Response:
    if kind == 0:
        body = {"query": "How do pumps work?", "mode": "chat", "session_id": f"s{worker}"}
        return client.post(f"{base}/v1/assistant/generate", json=body)
    if kind == 1:
        body = {"query": "How do valves work?", "mode": "rag", "stream": True}
        return client.post(f"{base}/v1/assistant/generate", json=body)
    if kind == 2:
        body = {"model": crash.MODEL, "messages": [{"role": "user", "content": "hello"}]}
        return client.post(f"{base}/v1/chat/completions", json=body)
    if kind == 3:
        text = f"# Note {worker}-{step % 20}\n\nPumps and valves, revision {step % 20}.\n"
        files = {"file": (f"note-{worker}-{step % 20}.md", text.encode(), "text/markdown")}
        return client.post(f"{base}/v1/documents", files=files)
    answered = client.post(
        f"{base}/v1/assistant/generate", json={"query": "Rate me", "mode": "chat"}
    )
    if answered.status_code != 200:
        return answered
    body = {"trace_id": answered.json()["trace_id"], "rating": 1}
    return client.post(f"{base}/v1/feedback", json=body)


def _message(response: httpx.Response) -> str:
    """The error body's message, or the start of the body when it has none."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _worker(
    bases: list[str], key: str, traffic: Traffic, stop: threading.Event, worker: int
) -> None:
    step = 0
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
        while not stop.is_set():
            base = bases[step % len(bases)]
            started = time.monotonic()
            message = ""
            try:
                response = _one(client, base, step % 5, worker, step)
                status = str(response.status_code)
                if response.status_code >= 500:
                    message = _message(response)
            except httpx.TransportError as exc:
                status, message = "transport_error", type(exc).__name__
            kind = f"{KINDS[step % 5]}, replica {step % len(bases)}"
            traffic.note(status, time.monotonic() - started, kind=kind, message=message)
            step += 1


def _usage(pid: int) -> tuple[float, int]:
    """RSS in MB and open file descriptors of a process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class SoakReport:
    minutes: int
    replicas: int
    requests: int
    statuses: dict[str, int]
    p99_ms_per_minute: list[float]
    rss_mb_first_last: list[list[float]]
    #: Each replica's RSS at the end of each minute (MB).
    rss_mb_per_minute: list[list[float]]
    fds_first_last: list[list[int]]
    budget_usd: float
    budget_spend_usd: float
    limited_key_429s: int
    server_errors_in_redis_outage: int
    server_errors_outside_it: int
    #: How many 5xx answers carried each error message.
    server_error_messages: dict[str, int]
    #: The 5xx outside the outage: sent and answered, in seconds after Redis was back.
    server_errors_late: list[dict[str, Any]]
    #: Redis stopped and answering again, in seconds after the start of the run.
    redis_down_back_s: list[float]
    ok_after_redis_restart: bool
    seconds: float


def run_soak(work_dir: Path, *, minutes: float, clients: int) -> SoakReport:
    started = time.monotonic()
    redis = PrivateRedis(work_dir)
    redis.start()
    data_dirs = [work_dir / "a", work_dir / "b"]
    with crash.stores_for("postgres", work_dir) as shared:
        stores = crash.Stores(shared.database_url, redis.url, f"soak:{uuid.uuid4().hex[:8]}:")
        _, key = crash._add_key(stores.database_url, 1_000.0)
        budget = 0.25
        budget_id, budget_key = crash._add_key(stores.database_url, budget)
        limited_record, limited_key = crash.new_key("limited", rpm=30, tpm=1_000_000)
        _add_record(stores.database_url, limited_record)
        replicas = []
        for index, data_dir in enumerate(data_dirs):
            data_dir.mkdir()
            service = crash.Service(data_dir, stores, work_dir / f"replica-{index}.log")
            service.start()
            replicas.append(service)
        bases = [service.base_url for service in replicas]
        traffic, side = Traffic(), Traffic()
        stop = threading.Event()
        threads = [
            threading.Thread(target=_worker, args=(bases, key, traffic, stop, i), daemon=True)
            for i in range(clients)
        ]
        threads.append(
            threading.Thread(target=_worker, args=(bases, budget_key, side, stop, 900), daemon=True)
        )
        threads.append(
            threading.Thread(
                target=_worker, args=(bases, limited_key, side, stop, 901), daemon=True
            )
        )
        for thread in threads:
            thread.start()
        usage: list[list[tuple[float, int]]] = [[] for _ in replicas]
        times: list[float] = []
        deadline = started + minutes * 60
        restarted = False
        ok_after = False
        outage_from = restart_at = 0.0
        while time.monotonic() < deadline:
            time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
            times.append(time.monotonic())
            for index, service in enumerate(replicas):
                assert service.process is not None
                usage[index].append(_usage(service.process.pid))
            if not restarted and time.monotonic() > started + minutes * 30:
                outage_from = time.monotonic()
                redis.stop()
                time.sleep(3)
                redis.start()
                restarted = True
                restart_at = time.monotonic()
        if restarted:
            ok_after = _ok_since(traffic, restart_at - traffic.started + 10)
        stop.set()
        for thread in threads:
            thread.join(30)
        for service in replicas:
            service.stop()
        spend = crash._spend(stores.database_url, budget_id)
    redis.stop()
    statuses: Counter[str] = Counter()
    for minute in traffic.minutes + side.minutes:
        statuses.update(minute.statuses)
    limited_429 = sum(m.statuses.get("429", 0) for m in side.minutes)
    errors = traffic.server_errors + side.server_errors
    # The outage, with 5 s after Redis is back for requests already waiting on it.
    in_outage = [e for e in errors if restarted and outage_from <= e.answered <= restart_at + 5]
    late = sorted((e for e in errors if e not in in_outage), key=lambda e: e.answered)
    messages = Counter(f"{e.status} {e.message}" for e in errors)
    return SoakReport(
        minutes=len(traffic.minutes),
        replicas=len(replicas),
        requests=sum(m.requests for m in traffic.minutes + side.minutes),
        statuses=dict(sorted(statuses.items())),
        p99_ms_per_minute=[_p99(m.latencies) for m in traffic.minutes],
        rss_mb_first_last=[[round(u[0][0], 1), round(u[-1][0], 1)] for u in usage if u],
        rss_mb_per_minute=[_per_minute(u, started, times) for u in usage],
        fds_first_last=[[u[0][1], u[-1][1]] for u in usage if u],
        budget_usd=budget,
        budget_spend_usd=round(spend, 6),
        limited_key_429s=limited_429,
        server_errors_in_redis_outage=len(in_outage),
        server_errors_outside_it=len(errors) - len(in_outage),
        server_error_messages=dict(messages.most_common()),
        server_errors_late=[
            {
                "sent_s": round(e.sent - restart_at, 3),
                "answered_s": round(e.answered - restart_at, 3),
                "kind": e.kind,
                "status": e.status,
                "message": e.message,
            }
            for e in late
        ],
        redis_down_back_s=[round(outage_from - started, 1), round(restart_at - started, 1)]
        if restarted
        else [],
        ok_after_redis_restart=ok_after,
        seconds=round(time.monotonic() - started, 1),
    )


def _per_minute(usage: list[tuple[float, int]], started: float, times: list[float]) -> list[float]:
    """The last RSS sample of each minute of the run."""
    last: dict[int, float] = {}
    for (rss, _), at in zip(usage, times, strict=True):
        last[int((at - started - 1) // 60)] = round(rss, 1)
    return [last[minute] for minute in sorted(last)]


def _ok_since(traffic: Traffic, offset_s: float) -> bool:
    """Whether requests answered 2xx in the minutes after ``offset_s`` (the service recovered)."""
    index = int(offset_s // 60)
    return any(m.statuses.get("200", 0) > 0 for m in traffic.minutes[index:])


def _p99(latencies: list[float]) -> float:
    if len(latencies) < 2:
        return 0.0
    return round(statistics.quantiles(latencies, n=100)[98] * 1000, 1)


def _add_record(database_url: str, record: Any) -> None:
    import asyncio

    async def work() -> None:
        engine = await asyncio.to_thread(crash.open_engine, database_url)
        try:
            await crash.SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # The replicas run this checkout's code, whichever checkout the environment was installed from.
    source = str(Path(__file__).resolve().parents[1] / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="gf-soak-") as tmp:
        report = run_soak(Path(tmp), minutes=args.minutes, clients=args.clients)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        for name, value in asdict(report).items():
            print(f"{name:24s} {value}")
    held = report.budget_spend_usd <= report.budget_usd and report.limited_key_429s > 0
    held = held and report.server_errors_outside_it == 0
    return 0 if held and report.ok_after_redis_restart else 1


if __name__ == "__main__":
    sys.exit(main())
