"""Fixtures for the gateway: priced fake-model settings, keys, a Redis prefix and a PostgreSQL schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from genai_factory.config import Settings
from genai_factory.gateway.keys import ApiKey, new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine

PRICED_MODEL = "fake-priced"
#: USD per million tokens: 1 000 / 2 000, so one token costs $0.001 in and $0.002 out.
PRICING = {PRICED_MODEL: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def priced_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The fake model priced as :data:`PRICED_MODEL`, fake embeddings, no knowledge base."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "llm": {"provider": "fake", "model": PRICED_MODEL, "pricing": PRICING, "max_tokens": 32},
        "embeddings": {"provider": "fake"},
        "rag": {"knowledge_dirs": []},
        "auth": {"enabled": True, "key_cache_s": 0},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def add_key(database_url: str, **fields: Any) -> tuple[ApiKey, str]:
    """Create a key in the store at ``database_url``; returns the record and the plaintext."""
    record, plaintext = new_key(fields.pop("name", "test"), **fields)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, database_url)
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return record, plaintext


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return priced_settings(tmp_path)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix in Redis DB 15; its keys are deleted afterwards."""
    from redis.asyncio import Redis

    prefix = f"gftest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client: Redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of the ``test`` database; dropped afterwards."""
    import psycopg

    schema = f"gw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
