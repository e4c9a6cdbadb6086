"""Reversible redaction in the service: placeholders mapped back only for an admin key.

The model, the session history and the interaction log see placeholders; with ``reveal_pii`` an
admin caller gets the original values in the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

GENERATE = "/v1/assistant/generate"

QUESTION = "Please e-mail jane.doe@example.com and call +44 20 7946 0958 about the refund."


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "llm": {"provider": "fake", "model": "fake-chat"},
        "embeddings": {"provider": "fake"},
        "rag": {"knowledge_dirs": [], "min_score": 0.0},
        "observability": {"access_log": False},
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def started(settings: Settings, model: FakeChatModel) -> Iterator[TestClient]:
    with TestClient(create_app(settings, model=model, embedder=FakeEmbedder())) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.01)
        yield client


def add_key(settings: Settings, *, admin: bool) -> str:
    record, plaintext = new_key("admin" if admin else "user", admin=admin)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return plaintext


def reversible(tmp_path: Path, **overrides: Any) -> Settings:
    return settings_for(tmp_path, safety={"reversible_redaction": True}, **overrides)


def ask(client: TestClient, key: str | None, **extra: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"query": QUESTION, "mode": "chat", "reveal_pii": True, **extra}
    return client.post(GENERATE, json=body, headers=headers)


def test_an_admin_key_gets_the_values_back_while_the_model_sees_placeholders(
    tmp_path: Path,
) -> None:
    settings = reversible(tmp_path)
    admin = add_key(settings, admin=True)
    model = FakeChatModel(["I will write to <EMAIL_ADDRESS_1> and ring <PHONE_NUMBER_1> today."])
    for client in started(settings, model):
        response = ask(client, admin)
        hidden = ask(client, admin, reveal_pii=False)
    assert response.status_code == 200, response.text
    sent = model.calls[0][-1].content
    assert "jane.doe" not in sent and "7946" not in sent
    assert "<EMAIL_ADDRESS_1>" in sent and "<PHONE_NUMBER_1>" in sent
    body = response.json()
    assert body["answer"] == (
        "I will write to jane.doe@example.com and ring +44 20 7946 0958 today."
    )
    assert body["safety"]["restored"] is True
    # Without reveal_pii the same request keeps the placeholders.
    assert hidden.status_code == 200
    assert "<EMAIL_ADDRESS_1>" in hidden.json()["answer"]
    assert hidden.json()["safety"]["restored"] is False


def test_a_streamed_answer_is_restored_too(tmp_path: Path) -> None:
    settings = reversible(tmp_path)
    admin = add_key(settings, admin=True)
    model = FakeChatModel(["Noted: <EMAIL_ADDRESS_1> is on file, " + "thanks " * 20])
    for client in started(settings, model):
        response = ask(client, admin, stream=True)
    assert response.status_code == 200, response.text
    assert "jane.doe@example.com is on file" in response.text
    assert "<EMAIL_ADDRESS_1>" not in response.text


def test_reveal_needs_an_admin_key(tmp_path: Path) -> None:
    settings = reversible(tmp_path)
    user = add_key(settings, admin=False)
    model = FakeChatModel(["ok"])
    for client in started(settings, model):
        anonymous = ask(client, None)
        plain = ask(client, user)
    assert anonymous.status_code == 401
    assert plain.status_code == 403
    assert plain.json()["error"]["code"] == "permission_denied"
    assert model.calls == []


def test_reveal_needs_reversible_redaction(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    admin = add_key(settings, admin=True)
    model = FakeChatModel(["ok"])
    for client in started(settings, model):
        response = ask(client, admin)
    assert response.status_code == 400
    assert "reversible_redaction" in response.json()["error"]["message"]
