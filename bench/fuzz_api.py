"""Property-based fuzzing of the whole HTTP API with schemathesis, auth on, every route and method.

The service runs under uvicorn in a background thread on an ephemeral 127.0.0.1 port, with the fake
model and embedder over the bundled user guide, auth on and an admin key (high limits, so the run
is not throttled into 429s). ``st run`` (schemathesis' CLI, its own process) reads the service's
``/openapi.json`` and sends generated requests, valid and invalid, to every operation with that
key; its checks fail a response that is a 5xx or that violates the schema the service publishes
(status code, content type, headers, body).

A witness wrapped around the application counts what the service answered, independently of
schemathesis: requests per route, responses per status class, and bodies that carry a Python stack
trace. The run passes when schemathesis reports no failure, the witness saw no 5xx and no trace.

    flock /tmp/genai-cpu.lock .venv/bin/python bench/fuzz_api.py [--max-examples 200]
        [--phases examples,coverage,fuzzing] [--seed 1] [--json]

The suite runs the same fuzzer with a few examples per operation
(``tests/service/test_api_fuzz.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from genai_factory.config import Settings, bundled_docs_dir
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

Scope = dict[str, Any]
Message = dict[str, Any]
#: What marks a Python stack trace in a response body.
TRACE_MARKERS = (b"Traceback (most recent call last)", b'File "/', b'.py", line ')
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
ST = Path(sys.executable).with_name("st")


@dataclass
class Witness:
    """What the service answered, counted at the ASGI boundary."""

    by_route: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    #: Off while the service starts (its 503s from /readyz are expected then).
    armed: bool = False

    def wrap(self, app: Any) -> Any:
        async def witnessed(scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not self.armed:
                await app(scope, receive, send)
                return
            where = f"{scope['method']} {scope['path']}"
            head = bytearray()

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    self.by_class[f"{status // 100}xx"] += 1
                    self.by_route[_route_of(scope["method"], scope["path"])] += 1
                    if status >= 500:
                        self.server_errors.append(f"{status} {where}")
                elif message["type"] == "http.response.body" and len(head) < 65_536:
                    head.extend(message.get("body", b""))
                    if any(marker in head for marker in TRACE_MARKERS):
                        self.traces.append(where)
                        head.clear()
                        head.extend(b"\0" * 65_536)  # report once per response
                await send(message)

            await app(scope, receive, watch)

        return witnessed


#: Routes with an id in the path: the id (any generated value) is folded so counts group by route.
_WITH_ID = re.compile(r"^(/v1/(?:admin/keys|documents|sessions|models))/[^/]+")


def _route_of(method: str, path: str) -> str:
    folded = _WITH_ID.sub(r"\1/{id}", path)
    return f"{method} {folded}"


@dataclass
class Running:
    base_url: str
    admin_key: str
    user_key: str
    settings: Settings


def fuzz_settings(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        llm={"provider": "fake", "model": "fake-chat", "max_tokens": 64},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [bundled_docs_dir()], "min_score": 0.2},
        auth={"enabled": True, "key_cache_s": 0},
        observability={"access_log": False},
    )


def add_keys(settings: Settings) -> tuple[str, str]:
    """An admin key and an ordinary key, both with limits high enough not to throttle the run."""
    admin, admin_plain = new_key("fuzz-admin", admin=True, rpm=1_000_000, tpm=1_000_000_000)
    user, user_plain = new_key("fuzz-user", rpm=1_000_000, tpm=1_000_000_000)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            store = SqlKeyStore(engine)
            await store.add(admin)
            await store.add(user)
        finally:
            engine.dispose()

    asyncio.run(work())
    return admin_plain, user_plain


@contextmanager
def serve(settings: Settings, witness: Witness | None = None) -> Iterator[Running]:
    """The service with the fake model under uvicorn in a thread; stopped on exit."""
    admin_key, user_key = add_keys(settings)
    app: Any = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    if witness is not None:
        app = witness.wrap(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, thread)
        if witness is not None:
            witness.armed = True
        yield Running(base_url, admin_key, user_key, settings)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _wait_ready(base_url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while True:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)


def _operations(base_url: str, key: str) -> int:
    """How many operations (path and method) the published schema holds."""
    request = urllib.request.Request(
        f"{base_url}/openapi.json", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        schema = json.load(response)
    return sum(len(methods) for methods in schema["paths"].values())


@dataclass
class FuzzReport:
    operations: int
    requests: int
    by_class: dict[str, int]
    by_route: dict[str, int]
    server_errors: list[str]
    traces: list[str]
    schemathesis_exit: int
    schemathesis_summary: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.schemathesis_exit == 0 and not self.server_errors and not self.traces


def run_fuzz(
    work_dir: Path, *, max_examples: int, phases: str, seed: int, workers: int = 1
) -> FuzzReport:
    """Start the service, run ``st run`` against it, and return what both sides saw."""
    witness = Witness()
    started = time.monotonic()
    with serve(fuzz_settings(work_dir / "data"), witness) as running:
        command = [
            str(ST),
            "run",
            f"{running.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {running.admin_key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(max_examples),
            "--phases",
            phases,
            "--seed",
            str(seed),
            "--workers",
            str(workers),
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--no-color",
            "--report-dir",
            str(work_dir / "report"),
        ]
        operations = _operations(running.base_url, running.admin_key)
        env = {name: value for name, value in os.environ.items() if name != "SCHEMATHESIS_HOOKS"}
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env=env, cwd=work_dir
        )
    output = done.stdout + done.stderr
    return FuzzReport(
        operations=operations,
        requests=sum(witness.by_class.values()),
        by_class=dict(sorted(witness.by_class.items())),
        by_route=dict(sorted(witness.by_route.items())),
        server_errors=witness.server_errors,
        traces=witness.traces,
        schemathesis_exit=done.returncode,
        schemathesis_summary=_summary(output),
        seconds=round(time.monotonic() - started, 1),
    )


def _summary(output: str) -> str:
    """Schemathesis' failures and final summary (the lines that matter when it fails)."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if "FAILURES" in line or "SUMMARY" in line:
            return "\n".join(lines[index:])[-8000:]
    return "\n".join(lines[-40:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-fuzz-") as tmp:
        report = run_fuzz(
            Path(tmp),
            max_examples=args.max_examples,
            phases=args.phases,
            seed=args.seed,
            workers=args.workers,
        )
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"operations in schema   {report.operations}")
        print(f"requests answered     {report.requests}  {report.by_class}")
        print(f"5xx                   {len(report.server_errors)}  {report.server_errors[:10]}")
        print(f"stack traces in body  {len(report.traces)}  {report.traces[:10]}")
        print(f"schemathesis exit     {report.schemathesis_exit}")
        print(f"seconds               {report.seconds}")
        for route, count in report.by_route.items():
            print(f"  {count:6d}  {route}")
        if report.schemathesis_exit != 0:
            print(report.schemathesis_summary)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
