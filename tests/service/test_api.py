from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.exceptions import (
    CircuitOpen,
    ConfigurationError,
    ModelRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from genai_factory.service import create_app
from genai_factory.service.errors import status_for
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError(f"service not ready: {client.get('/readyz').json()}")


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def client(fake_settings: Settings, model: FakeChatModel) -> Iterator[TestClient]:
    app = create_app(fake_settings, model=model, embedder=FakeEmbedder())
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def test_generate_answers_with_citations_from_the_bundled_guide(
    client: TestClient, model: FakeChatModel
) -> None:
    model._replies.append("A fallback model answers when the primary model fails [1].")
    response = client.post(
        "/v1/assistant/generate", json={"query": "How do I configure a fallback model?"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "A fallback model answers when the primary model fails [1]."
    assert body["route"] == "rag"
    assert body["model"] == "fake-chat"
    assert len(body["trace_id"]) == 32
    assert body["latency_ms"] > 0
    assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "cost_usd"}
    citation = body["citations"][0]
    assert set(citation) >= {"document_id", "title", "source", "excerpt", "score"}
    assert citation["cited"] is True
    assert any(c["source"] == "models.md" for c in body["citations"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    assert ready["index_chunks"] > 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "hi", "mode": "telepathy"}, "mode"),
        ({"query": "hi", "max_tokens": 0}, "max_tokens"),
        ({"query": "hi", "unexpected": 1}, "unexpected"),
    ],
)
def test_bad_requests_get_clear_422s(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.post("/v1/assistant/generate", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(d["field"] == field for d in error["details"])


def test_query_over_the_configured_limit_is_a_422(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(
        update={"service": fake_settings.service.model_copy(update={"max_query_chars": 10})}
    )
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        response = client.post("/v1/assistant/generate", json={"query": "x" * 11})
        assert response.status_code == 422
        assert "limit is 10" in response.json()["error"]["message"]
        assert client.post("/v1/assistant/generate", json={"query": "x" * 10}).status_code == 200


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/assistant/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ProviderUnavailable("backend down"), 502),
        (ProviderTimeout("too slow"), 504),
        (CircuitOpen("open", retry_after=3.2), 503),
        (ModelRequestRejected("prompt too long"), 400),
    ],
)
def test_model_errors_map_to_status_codes(
    fake_settings: Settings, error: Exception, status: int
) -> None:
    app = create_app(fake_settings, model=FakeChatModel([error]), embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        response = client.post("/v1/assistant/generate", json={"query": "hello", "mode": "chat"})
    assert response.status_code == status
    body = response.json()["error"]
    assert body["code"] == error.code  # type: ignore[attr-defined]
    if status == 503:
        assert response.headers["retry-after"] == "3"


def test_unexpected_errors_are_500_without_details(fake_settings: Settings) -> None:
    app = create_app(
        fake_settings, model=FakeChatModel([RuntimeError("secret detail")]), embedder=FakeEmbedder()
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        response = client.post("/v1/assistant/generate", json={"query": "hello", "mode": "chat"})
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["error"]["code"] == "internal_error"


def test_configuration_errors_hide_their_message() -> None:
    assert status_for(ConfigurationError("path /etc/x")) == 500


def test_requests_before_ready_get_503_with_retry_after(fake_settings: Settings) -> None:
    class SlowEmbedder(FakeEmbedder):
        async def embed(self, texts):  # type: ignore[no-untyped-def]
            import asyncio

            await asyncio.sleep(0.3)
            return await super().embed(texts)

    app = create_app(fake_settings, model=FakeChatModel(), embedder=SlowEmbedder())
    with TestClient(app) as client:
        response = client.post("/v1/assistant/generate", json={"query": "hello"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"
        assert response.headers["retry-after"] == "5"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_startup_failure_is_reported_by_readyz(fake_settings: Settings) -> None:
    class BrokenEmbedder(FakeEmbedder):
        async def embed(self, texts):  # type: ignore[no-untyped-def]
            raise ConfigurationError("embedder weights missing")

    app = create_app(fake_settings, model=FakeChatModel(), embedder=BrokenEmbedder())
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while "error" not in client.get("/readyz").json() and time.monotonic() < deadline:
            time.sleep(0.02)
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["error"] == "embedder weights missing"
        response = client.post("/v1/assistant/generate", json={"query": "hello"})
        assert response.status_code == 503


def test_oversized_bodies_get_413_before_they_are_read(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        service={"max_body_bytes": 4096},
    )
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    big = {"model": "fake-chat", "messages": [{"role": "user", "content": "x" * 10_000}]}
    with TestClient(app) as client:
        declared = client.post("/v1/chat/completions", json=big)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"query": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        streamed = client.post(
            "/v1/assistant/generate", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        small = client.post(
            "/v1/chat/completions",
            json={**big, "messages": [big["messages"][0] | {"content": "hi"}]},
        )
        assert small.status_code != 413


def test_openapi_lists_the_error_responses_with_their_body() -> None:
    spec = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    responses = spec["paths"]["/v1/assistant/generate"]["post"]["responses"]
    assert {"401", "402", "403", "413", "429", "503"} <= set(responses)
    schema = responses["429"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ErrorBody")
