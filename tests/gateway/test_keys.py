"""Key format, hashing, and the SQLite key store (which never holds a plaintext key)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_factory.gateway.keys import hash_key, key_id_of, matches, new_key
from genai_factory.gateway.sql_store import SqlKeyStore, normalise_url, open_engine


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlKeyStore]:
    engine = await asyncio.to_thread(open_engine, f"sqlite:///{tmp_path / 'gw' / 'gateway.db'}")
    yield SqlKeyStore(engine)
    engine.dispose()


def test_keys_have_a_prefix_a_public_id_and_a_long_secret() -> None:
    record, plaintext = new_key("ci", rpm=60)
    assert plaintext.startswith(f"gf_{record.id}_")
    assert len(record.id) == 12
    assert len(plaintext) == len("gf_") + 12 + 1 + 43
    assert key_id_of(plaintext) == record.id
    assert record.key_hash == hash_key(plaintext) != plaintext
    assert matches(plaintext, record.key_hash)
    assert not matches(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"), record.key_hash)


def test_two_keys_never_collide() -> None:
    made = {new_key("k")[1] for _ in range(200)}
    assert len(made) == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gf_",
        "sk-123",
        "gf_ZZZZZZZZZZZZ_" + "a" * 43,
        "gf_0123456789ab_" + "a" * 42,
        "gf_0123456789ab-" + "a" * 43,
    ],
)
def test_malformed_keys_have_no_id(text: str) -> None:
    assert key_id_of(text) is None


def test_the_hash_is_never_serialised() -> None:
    record, _ = new_key("x")
    assert "key_hash" not in record.model_dump()
    assert record.key_hash not in record.model_dump_json()
    assert record.key_hash not in repr(record)
    assert "key_hash" not in record.info().model_dump()


async def test_store_adds_gets_lists_and_revokes(store: SqlKeyStore) -> None:
    first, _ = new_key("first", rpm=10, tpm=100, budget_usd=2.5, budget_period="day")
    second, _ = new_key("second", admin=True)
    await store.add(first)
    await store.add(second)
    fetched = await store.get(first.id)
    assert fetched == first
    assert fetched is not None and fetched.key_hash == first.key_hash
    assert await store.count_active() == 2
    assert [k.id for k in await store.list_keys()] == [first.id, second.id]

    assert await store.revoke(first.id) is True
    assert await store.revoke(first.id) is False
    assert await store.revoke("000000000000") is False
    revoked = await store.get(first.id)
    assert revoked is not None and not revoked.active
    assert [k.id for k in await store.list_keys()] == [second.id]
    assert len(await store.list_keys(include_revoked=True)) == 2
    assert await store.count_active() == 1
    assert await store.get("nope") is None


async def test_plaintext_keys_never_reach_the_sqlite_files(tmp_path: Path) -> None:
    directory = tmp_path / "gw"
    engine = await asyncio.to_thread(open_engine, f"sqlite:///{directory / 'gateway.db'}")
    store = SqlKeyStore(engine)
    plaintexts = []
    for index in range(5):
        record, plaintext = new_key(f"key-{index}")
        await store.add(record)
        plaintexts.append(plaintext)
    engine.dispose()
    files = list(directory.iterdir())
    assert any(f.name == "gateway.db" for f in files)
    stored = b"".join(f.read_bytes() for f in files)
    assert stored
    for plaintext in plaintexts:
        assert plaintext.encode() not in stored
        secret = plaintext.split("_", 2)[2]
        assert secret.encode() not in stored
        assert hash_key(plaintext).encode() in stored


def test_plain_postgres_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
