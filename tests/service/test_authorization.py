"""Authorization on every session, feedback and admin route, auth on: one test per route.

Two ordinary keys (``alice``, ``mallory``) and an admin key. Alice holds a session and an answered
request; mallory may not read, continue or delete the session, rate the answer, or call any admin
route; the admin key may call the admin routes; without a key every route but the probes, the
metrics scrape and the UI pages is a 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import ApiKey, new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

SESSION = "alice-session-1"


@dataclass
class World:
    client: TestClient
    alice: str
    alice_record: ApiKey
    mallory: str
    admin: str
    trace_id: str

    def as_(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("authz") / "data"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        llm={"provider": "fake", "model": "fake-chat", "max_tokens": 32},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        auth={"enabled": True, "key_cache_s": 0},
        observability={"access_log": False},
    )
    alice, alice_key = new_key("alice")
    mallory, mallory_key = new_key("mallory")
    admin, admin_key = new_key("ops", admin=True)

    async def add() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            store = SqlKeyStore(engine)
            for record in (alice, mallory, admin):
                await store.add(record)
        finally:
            engine.dispose()

    asyncio.run(add())
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        answered = client.post(
            "/v1/assistant/generate",
            json={"query": "my account number is private", "mode": "chat", "session_id": SESSION},
            headers={"authorization": f"Bearer {alice_key}"},
        )
        assert answered.status_code == 200, answered.text
        yield World(client, alice_key, alice, mallory_key, admin_key, answered.json()["trace_id"])


def test_another_key_cannot_read_a_session(world: World) -> None:
    assert (
        world.client.get(f"/v1/sessions/{SESSION}", headers=world.as_(world.alice)).status_code
        == 200
    )
    refused = world.client.get(f"/v1/sessions/{SESSION}", headers=world.as_(world.mallory))
    assert refused.status_code in (403, 404)
    assert "account number" not in refused.text


def test_another_key_cannot_continue_a_session(world: World) -> None:
    refused = world.client.post(
        "/v1/assistant/generate",
        json={"query": "what did I say before?", "mode": "chat", "session_id": SESSION},
        headers=world.as_(world.mallory),
    )
    assert refused.status_code in (403, 404)
    assert "account number" not in refused.text


def test_another_key_cannot_delete_a_session(world: World) -> None:
    refused = world.client.delete(f"/v1/sessions/{SESSION}", headers=world.as_(world.mallory))
    assert refused.status_code in (403, 404)
    assert (
        world.client.get(f"/v1/sessions/{SESSION}", headers=world.as_(world.alice)).status_code
        == 200
    )


def test_another_key_cannot_rate_an_answer(world: World) -> None:
    body = {"trace_id": world.trace_id, "rating": -1}
    refused = world.client.post("/v1/feedback", json=body, headers=world.as_(world.mallory))
    assert refused.status_code in (403, 404)
    accepted = world.client.post("/v1/feedback", json=body, headers=world.as_(world.alice))
    assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/stats", None),
        ("GET", "/v1/admin/keys", None),
        ("POST", "/v1/admin/keys", {"name": "escalated", "admin": True}),
        ("DELETE", "/v1/admin/keys/{alice_id}", None),
        ("GET", "/v1/admin/spend", None),
    ],
)
def test_admin_routes_refuse_an_ordinary_key_and_serve_the_admin_key(
    world: World, method: str, path: str, body: dict[str, object] | None
) -> None:
    url = path.format(alice_id=world.alice_record.id)
    refused = world.client.request(method, url, json=body, headers=world.as_(world.mallory))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "permission_denied"
    if method == "DELETE":  # the admin may, but keep alice for the other tests
        return
    allowed = world.client.request(method, url, json=body, headers=world.as_(world.admin))
    assert allowed.status_code in (200, 201), allowed.text
    if path == "/v1/admin/keys" and method == "GET":
        assert world.alice not in allowed.text  # secrets are never listed, only ids


def test_every_route_but_the_open_ones_needs_a_key(world: World) -> None:
    schema = world.client.get("/openapi.json", headers=world.as_(world.admin)).json()
    open_paths = {"/healthz", "/readyz"}
    checked = 0
    for path, methods in schema["paths"].items():
        if path in open_paths:
            continue
        url = path.replace("{key_id}", "x").replace("{session_id}", "x")
        url = url.replace("{document_id}", "x").replace("{model_id}", "x")
        for method in methods:
            response = world.client.request(method.upper(), url)
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 12
    assert world.client.get("/openapi.json").status_code == 401
