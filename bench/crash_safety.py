"""Crash safety: ``kill -9`` the service under concurrent load, restart it, count what survived.

``genai-factory serve`` runs as its own process (the fake model, priced, so every call is charged;
auth on; one key with a USD budget the load exhausts). Concurrent clients send
``/v1/assistant/generate`` requests and note the trace id of every request answered 200. After a
few seconds the service is killed with SIGKILL, restarted on the same data (and databases), and
the load resumes; after the last round the service is restarted once more and stopped normally.

Then the stores are read directly:

* every trace id acknowledged with a 200 has its spend-ledger row and its interaction-log row
  (both committed before the response is sent);
* the ledger's total for the key is not over its budget (reservations of killed requests are
  either gone with the process or, on Redis, left counted against the budget: never released as
  spend, never overspent), and requests after the restart are refused with 402 once it is spent;
* an uploaded document (and the index version serving it) is still there after every restart;
* the model registry: a registrar process (``bench/crash_registry.py``) keeps registering versions
  and promoting each to ``champion`` on the service's MLflow store and is killed with the service;
  every acknowledged version is there with its artefact intact, ``champion`` points at a complete
  acknowledged version (also as the restarted service reports it), and a rollback still works;
* the SQLite files pass ``PRAGMA integrity_check`` (the MLflow store's included).

    flock /tmp/genai-cpu.lock .venv/bin/python bench/crash_safety.py [--backend sqlite|postgres]
        [--rounds 3] [--seconds 4] [--clients 20] [--budget-usd 3] [--no-registry] [--json]

``--backend postgres`` keeps keys, ledger and interaction log in a fresh schema of the ``test``
database on 127.0.0.1:5432, the MLflow store in a second one, and the limits and budgets in Redis
(127.0.0.1:6379, DB 15, a fresh prefix). A short run is in the suite
(``tests/integration/test_crash_safety.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import sqlalchemy as sa

from genai_factory.config import load_settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.redis_backends import budget_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine, spend_table
from genai_factory.observability.interaction_store import interactions_table

MODEL = "fake-priced"
#: USD per million tokens: one request (~75 prompt tokens, up to 16 out) costs under $0.001.
PRICING = {MODEL: {"input_per_million": 10.0, "output_per_million": 20.0}}
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
REDIS_URL = "redis://127.0.0.1:6379/15"
DOCUMENT = b"# Pumps\n\nPumps move water through pipes; valves stop it.\n"


def _load(name: str) -> ModuleType:
    """A sibling bench module (this file is also loaded by path, outside ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


registry_check = _load("crash_registry")


@dataclass
class Stores:
    database_url: str
    redis_url: str | None = None
    redis_prefix: str = "gf:"
    schema: str | None = None
    #: The MLflow tracking and registry store (``None``: ``<data dir>/mlflow.db``).
    mlflow_uri: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, stores: Stores, port: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GENAI_")}
    env.update(
        {
            "GENAI_DATA_DIR": str(data_dir),
            "GENAI_LLM__PROVIDER": "fake",
            "GENAI_LLM__MODEL": MODEL,
            "GENAI_LLM__MAX_TOKENS": "16",
            "GENAI_LLM__PRICING": json.dumps(PRICING),
            "GENAI_EMBEDDINGS__PROVIDER": "fake",
            "GENAI_RAG__KNOWLEDGE_DIRS": "[]",
            "GENAI_AUTH__ENABLED": "true",
            "GENAI_AUTH__KEY_CACHE_S": "0",
            "GENAI_SAFETY__ENABLED": "false",
            "GENAI_GATEWAY__DATABASE_URL": stores.database_url,
            "GENAI_GATEWAY__REDIS_PREFIX": stores.redis_prefix,
            "GENAI_SERVICE__PORT": str(port),
            "GENAI_LOG_LEVEL": "warning",
        }
    )
    if stores.redis_url:
        env["GENAI_GATEWAY__REDIS_URL"] = stores.redis_url
    if stores.mlflow_uri:
        env["GENAI_MLOPS__TRACKING_URI"] = stores.mlflow_uri
    return env


class Service:
    """``genai-factory serve`` as a child process."""

    def __init__(
        self,
        data_dir: Path,
        stores: Stores,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = {**_env(data_dir, stores, self.port), **(extra_env or {})}
        self._log = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cli = Path(sys.executable).with_name("genai-factory")
        command = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(  # fixed argument list, no shell
                command, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the service did not start:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Load:
    """What the clients saw."""

    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(base_url: str, key: str, load: Load, stop: threading.Event, index: int) -> None:
    headers = {"authorization": f"Bearer {key}"}
    body = {"query": f"client {index}: how do pumps move water?", "mode": "chat", "max_tokens": 16}
    with httpx.Client(timeout=10, headers=headers) as client:
        while not stop.is_set():
            try:
                response = client.post(f"{base_url}/v1/assistant/generate", json=body)
            except httpx.TransportError:
                with load.lock:
                    load.statuses["transport_error"] += 1
                time.sleep(0.05)
                continue
            with load.lock:
                load.statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    load.acknowledged.add(response.json()["trace_id"])


def _round(
    service: Service, key: str, load: Load, clients: int, seconds: float, registrar: Any = None
) -> None:
    """Load the service, kill it with SIGKILL while the load runs, then stop the clients.

    ``registrar`` (a :class:`crash_registry.Registrar`), when given, is killed at the same instant,
    once it has acknowledged a registration in this round.
    """
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client, args=(service.base_url, key, load, stop, i), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    if registrar is not None:
        registrar.wait_acknowledged(60)
        registrar.kill()
    service.kill()
    stop.set()
    for thread in threads:
        thread.join(15)


def _add_key(database_url: str, budget_usd: float | None, admin: bool = False) -> tuple[str, str]:
    record, plaintext = new_key(
        "crash", admin=admin, rpm=1_000_000, tpm=1_000_000_000, budget_usd=budget_usd
    )

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, database_url)
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return record.id, plaintext


@dataclass
class CrashReport:
    backend: str
    rounds: int
    clients: int
    acknowledged: int
    interaction_rows_found: int
    ledger_rows_found: int
    missing_interactions: int
    missing_ledger: int
    statuses: dict[str, int]
    budget_usd: float
    ledger_spend_usd: float
    #: Redis only: the budget counter less the ledger, i.e. reservations of killed requests
    #: still counted against the budget (never spent, never released before the period ends).
    counter_minus_ledger_usd: float | None
    refused_after_restart: bool
    document_kept: bool
    index_version_kept: bool
    sqlite_integrity: dict[str, str]
    #: The model registry after the kills (``None``: not exercised).
    registry: Any
    seconds: float

    @property
    def passed(self) -> bool:
        return (
            self.missing_ledger == 0
            and self.missing_interactions == 0
            and self.ledger_spend_usd <= self.budget_usd + 1e-9
            and self.refused_after_restart
            and self.document_kept
            and self.index_version_kept
            and (self.registry is None or self.registry.passed)
            and all(result == "ok" for result in self.sqlite_integrity.values())
        )


def _found(database_url: str, table: sa.Table, trace_ids: set[str]) -> set[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.trace_id)).scalars().all()
        return trace_ids & set(rows)
    finally:
        engine.dispose()


def _spend(database_url: str, key_id: str) -> float:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(spend_table.c.actual_usd), 0.0)).where(
                    spend_table.c.key_id == key_id
                )
            ).scalar_one()
        return float(total)
    finally:
        engine.dispose()


def _redis_counted(stores: Stores, key_id: str) -> float | None:
    """The key's budget counter in Redis, in USD (``None`` without Redis)."""
    if not stores.redis_url:
        return None
    from redis import Redis

    client = Redis.from_url(stores.redis_url)
    try:
        keys = list(client.scan_iter(match=budget_key(stores.redis_prefix, f"{key_id}:*")))
        return sum(int(client.get(key) or 0) for key in keys) / 1_000_000_000
    finally:
        client.close()


def _upload(service: Service, key: str) -> tuple[str, str]:
    response = httpx.post(
        f"{service.base_url}/v1/documents",
        files={"file": ("pumps.md", DOCUMENT, "text/markdown")},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    return body["document"]["id"], body["version"]


def _document_state(service: Service, key: str) -> tuple[set[str], str | None]:
    listed = httpx.get(
        f"{service.base_url}/v1/documents",
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    return {d["id"] for d in listed["documents"]}, listed["version"]


def _service_champion(service: Service, admin: str) -> int | None:
    """The champion of the registrar's model as the running service reports it."""
    response = httpx.get(
        f"{service.base_url}/v1/admin/mlops",
        headers={"authorization": f"Bearer {admin}"},
        timeout=60,
    )
    response.raise_for_status()
    for model in response.json()["models"]:
        if model["name"] == registry_check.MODEL:
            return int(model["champion"]) if model["champion"] is not None else None
    return None


def _integrity(data_dir: Path) -> dict[str, str]:
    results = {}
    for path in sorted(data_dir.rglob("*.db")):
        conn = sqlite3.connect(path)
        try:
            results[path.name] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    return results


@contextlib.contextmanager
def stores_for(backend: str, data_dir: Path) -> Iterator[Stores]:
    """SQLite files in the data directory, or fresh PostgreSQL schemas plus a Redis prefix.

    On PostgreSQL the MLflow store gets a schema of its own beside the gateway's (its artefacts
    stay in the data directory).
    """
    if backend == "sqlite":
        yield Stores(f"sqlite:///{data_dir / 'gateway.db'}")
        return
    import psycopg
    from redis import Redis

    schema = f"crash_{uuid.uuid4().hex[:10]}"
    prefix = f"gfcrash:{uuid.uuid4().hex[:10]}:"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE SCHEMA "{schema}_mlflow"')
    try:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        mlflow = f"{POSTGRES}?options=-csearch_path%3D{schema}_mlflow"
        yield Stores(url, REDIS_URL, prefix, schema, mlflow)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.execute(f'DROP SCHEMA "{schema}_mlflow" CASCADE')
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = list(redis.scan_iter(match=f"{prefix}*"))
            if keys:
                redis.delete(*keys)
        finally:
            redis.close()


def run_crash(
    work_dir: Path,
    *,
    backend: str = "sqlite",
    rounds: int = 3,
    seconds: float = 4.0,
    clients: int = 20,
    budget_usd: float = 3.0,
    registry: bool = True,
) -> CrashReport:
    started = time.monotonic()
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with stores_for(backend, data_dir) as stores:
        key_id, key = _add_key(stores.database_url, budget_usd)
        _, admin = _add_key(stores.database_url, None, admin=True)
        service = Service(data_dir, stores, work_dir / "service.log")
        registrar = (
            registry_check.Registrar(_env(data_dir, stores, service.port), work_dir)
            if registry
            else None
        )
        load = Load()
        if registrar is not None:
            registrar.start()  # it boots (imports MLflow) while the service does
        service.start()
        document_id, version = _upload(service, key)
        kept_document = kept_version = True
        for index in range(rounds):
            _round(service, key, load, clients, seconds, registrar)
            if registrar is not None and index < rounds - 1:
                registrar.start()
            service.start()
            documents, active = _document_state(service, key)
            kept_document &= document_id in documents
            kept_version &= active == version
        served = _service_champion(service, admin) if registrar is not None else None
        # After the restarts: is the budget still enforced (402 once it is spent)?
        refused = False
        with httpx.Client(timeout=10, headers={"authorization": f"Bearer {key}"}) as client:
            for _ in range(5000):
                response = client.post(
                    f"{service.base_url}/v1/assistant/generate",
                    json={"query": "after restart", "mode": "chat", "max_tokens": 16},
                )
                load.statuses[f"after:{response.status_code}"] += 1
                if response.status_code == 200:
                    load.acknowledged.add(response.json()["trace_id"])
                if response.status_code == 402:
                    refused = True
                    break
        service.stop()
        acknowledged = load.acknowledged
        interactions = _found(stores.database_url, interactions_table, acknowledged)
        ledger = _found(stores.database_url, spend_table, acknowledged)
        spend = _spend(stores.database_url, key_id)
        counted = _redis_counted(stores, key_id)
        checked = None
        if registrar is not None:
            mlops = {"tracking_uri": stores.mlflow_uri} if stores.mlflow_uri else {}
            settings = load_settings(data_dir=data_dir, mlops=mlops)
            checked = registry_check.check_registry(
                settings, registry_check.read_acks(registrar.acks), served
            )
            checked.kills_during = registrar.kills
    return CrashReport(
        backend=backend,
        rounds=rounds,
        clients=clients,
        acknowledged=len(acknowledged),
        interaction_rows_found=len(interactions),
        ledger_rows_found=len(ledger),
        missing_interactions=len(acknowledged - interactions),
        missing_ledger=len(acknowledged - ledger),
        statuses=dict(sorted(load.statuses.items())),
        budget_usd=budget_usd,
        ledger_spend_usd=round(spend, 6),
        counter_minus_ledger_usd=None if counted is None else round(counted - spend, 6),
        refused_after_restart=refused,
        document_kept=kept_document,
        index_version_kept=kept_version,
        sqlite_integrity=_integrity(data_dir),
        registry=checked,
        seconds=round(time.monotonic() - started, 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--budget-usd", type=float, default=3.0)
    parser.add_argument(
        "--no-registry", action="store_true", help="Run no registrar beside the service."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-crash-") as tmp:
        report = run_crash(
            Path(tmp),
            backend=args.backend,
            rounds=args.rounds,
            seconds=args.seconds,
            clients=args.clients,
            budget_usd=args.budget_usd,
            registry=not args.no_registry,
        )
    registry_passed = None if report.registry is None else report.registry.passed
    if args.json:
        print(
            json.dumps(
                {**asdict(report), "registry_passed": registry_passed, "passed": report.passed},
                indent=2,
            )
        )
    else:
        for name, value in asdict(report).items():
            print(f"{name:24s} {value}")
        print(f"{'registry_passed':24s} {registry_passed}")
        print(f"{'passed':24s} {report.passed}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
