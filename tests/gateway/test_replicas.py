"""Two service processes sharing Redis and PostgreSQL: limits and budgets hold across replicas."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from genai_factory.config import Price, ServiceSettings
from genai_factory.gateway.budgets import to_nano
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.pricing import cost_usd
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.rag.prompting import build_chat_messages

from .conftest import POSTGRES_URL, PRICED_MODEL, PRICING, REDIS_URL

pytestmark = pytest.mark.integration

LAUNCHER = Path(__file__).with_name("launcher.py")
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
MAX_TOKENS = 20
#: Long enough that the fake model's echo is cut at max_tokens: each call costs about its worst case.
QUERY = "Please repeat after me: " + " ".join(f"word{i}" for i in range(40))
BUDGET_CALLS = 50


@dataclass
class Replicas:
    urls: list[str]
    database_url: str
    redis_prefix: str
    budget_key: str
    budget_key_id: str
    budget_usd: float
    worst_usd: float
    rpm_key: str


def worst_case_usd() -> float:
    messages = build_chat_messages(QUERY, system_prompt=ServiceSettings().system_prompt)
    price = Price(**PRICING[PRICED_MODEL])
    return cost_usd(price, estimate_prompt_tokens(messages), MAX_TOKENS)


def create_keys(database_url: str, worst: float) -> tuple[str, str, float, str]:
    budget = BUDGET_CALLS * to_nano(worst) / 1e9
    budgeted, budget_plain = new_key("budget", rpm=100_000, tpm=10_000_000, budget_usd=budget)
    limited, rpm_plain = new_key("rpm", rpm=60)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, database_url)
        try:
            store = SqlKeyStore(engine)
            await store.add(budgeted)
            await store.add(limited)
        finally:
            engine.dispose()

    asyncio.run(work())
    return budget_plain, budgeted.id, budget, rpm_plain


def start(tmp: Path, index: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    log = (tmp / f"replica-{index}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(listener.fileno())],
        pass_fds=[listener.fileno()],
        env={**env, "GENAI_DATA_DIR": str(tmp / f"data-{index}")},
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    listener.close()
    log.close()
    return process, f"http://127.0.0.1:{port}"


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"replica exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"replica not ready: {log.read_text()}")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    tmp = tmp_path_factory.mktemp("replicas")
    schema = f"gw_{uuid.uuid4().hex[:12]}"
    prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    database_url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        worst = worst_case_usd()
        budget_key, budget_id, budget, rpm_key = create_keys(database_url, worst)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_")}
        env.update(
            {
                "GENAI_LLM__PROVIDER": "fake",
                "GENAI_LLM__MODEL": PRICED_MODEL,
                "GENAI_LLM__PRICING": json.dumps(PRICING),
                "GENAI_EMBEDDINGS__PROVIDER": "fake",
                "GENAI_RAG__KNOWLEDGE_DIRS": "[]",
                "GENAI_AUTH__ENABLED": "true",
                "GENAI_GATEWAY__DATABASE_URL": database_url,
                "GENAI_GATEWAY__REDIS_URL": REDIS_URL,
                "GENAI_GATEWAY__REDIS_PREFIX": prefix,
                "GENAI_LOG_LEVEL": "warning",
            }
        )
        urls = []
        for index in range(2):
            process, url = start(tmp, index, env)
            processes.append(process)
            urls.append(url)
        for index, (process, url) in enumerate(zip(processes, urls, strict=True)):
            wait_ready(url, process, tmp / f"replica-{index}.log")
        yield Replicas(urls, database_url, prefix, budget_key, budget_id, budget, worst, rpm_key)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


async def fire(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    """``count`` concurrent requests with ``key``, alternating between the replicas."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        body = {"query": QUERY, "mode": "chat", "max_tokens": MAX_TOKENS}
        headers = {"authorization": f"Bearer {key}"}
        return await asyncio.gather(
            *(
                client.post(f"{urls[i % 2]}/v1/assistant/generate", json=body, headers=headers)
                for i in range(count)
            )
        )


def ledger_rows(database_url: str, key_id: str) -> list[SpendEntry]:
    async def work() -> list[SpendEntry]:
        engine = await asyncio.to_thread(open_engine, database_url)
        try:
            return await SqlSpendLedger(engine).entries(key_id, limit=10_000)
        finally:
            engine.dispose()

    return asyncio.run(work())


def test_a_budget_holds_across_replicas_under_200_concurrent_requests(replicas: Replicas) -> None:
    responses = asyncio.run(fire(replicas.urls, replicas.budget_key, 200))

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) >= BUDGET_CALLS, [r.text for r in refused[:3]]
    assert len(ok) + len(refused) == 200 and refused
    for response in refused:
        assert response.status_code == 402, response.text
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded"
        assert "budget exceeded" in error["message"] and "resets at" in error["message"]

    rows = ledger_rows(replicas.database_url, replicas.budget_key_id)
    assert len(rows) == len(ok)
    assert {row.trace_id for row in rows} == {r.json()["trace_id"] for r in ok}
    spent = sum(row.actual_usd for row in rows)
    assert spent <= replicas.budget_usd + 1e-9
    assert spent >= 0.9 * BUDGET_CALLS * replicas.worst_usd  # the budget was used, not wasted
    client = redis.Redis.from_url(REDIS_URL)
    try:
        counters = list(client.scan_iter(match=f"{replicas.redis_prefix}*:budget:*"))
        assert len(counters) == 1
        assert int(client.get(counters[0]) or 0) <= to_nano(replicas.budget_usd)
    finally:
        client.close()


def test_requests_per_minute_hold_across_replicas(replicas: Replicas) -> None:
    started = time.monotonic()
    responses = asyncio.run(fire(replicas.urls, replicas.rpm_key, 90))
    assert time.monotonic() - started < 60  # all within one window
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) == 60 and len(limited) == 30
    # Each replica got 45 requests, fewer than the limit: both must have served some.
    assert {r.url.port for r in ok} == {int(u.rsplit(":", 1)[1]) for u in replicas.urls}
    for response in limited:
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    # Still limited a moment later, from either replica.
    again = asyncio.run(fire(replicas.urls, replicas.rpm_key, 2))
    assert [r.status_code for r in again] == [429, 429]
