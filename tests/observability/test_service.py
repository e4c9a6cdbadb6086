"""Observability through the HTTP service: /metrics, trace ids and spans, the interaction log,
feedback, sessions that belong to keys, refusal counters and budget alerts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from genai_factory.config import Settings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.llm.breaker import BreakerState, CircuitBreakerModel
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

from .webhook import webhook_receiver

GENERATE = "/v1/assistant/generate"
PRICED = "fake-priced"
#: Scripted answers, so the tests do not depend on what the guards make of an echo.
BENIGN = "Glad to help: the gateway checks keys, limits and budgets."


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "llm": {"provider": "fake", "model": "fake-chat", "max_tokens": 32},
        "embeddings": {"provider": "fake"},
        "rag": {"knowledge_dirs": []},
        "observability": {"access_log": False},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def priced(tmp_path: Path, **overrides: Any) -> Settings:
    pricing = {PRICED: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
    return settings_for(
        tmp_path,
        llm={"provider": "fake", "model": PRICED, "pricing": pricing, "max_tokens": 20},
        auth={"enabled": True, "key_cache_s": 0},
        **overrides,
    )


def add_key(settings: Settings, **fields: Any) -> tuple[str, str]:
    """A key in the service's key store: ``(key id, bearer header value)``."""
    record, plaintext = new_key("test", **fields)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return record.id, f"Bearer {plaintext}"


def started(settings: Settings, model: FakeChatModel | None = None) -> TestClient:
    name = settings.llm.model
    model = model or FakeChatModel([BENIGN] * 20, name=name)
    app = create_app(settings, model=model, embedder=FakeEmbedder())
    return TestClient(app)


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.01)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with started(settings_for(tmp_path)) as running:
        wait_ready(running)
        yield running


def metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def interaction(settings: Settings, trace_id: str, timeout_s: float = 5.0) -> InteractionRecord:
    """The stored record of ``trace_id`` (written in the background: wait for it)."""

    async def look() -> InteractionRecord | None:
        engine = await asyncio.to_thread(
            open_interaction_engine, settings.interaction_database_url()
        )
        try:
            return await SqlInteractionLog(engine).get(trace_id)
        finally:
            engine.dispose()

    deadline = time.monotonic() + timeout_s
    while (found := asyncio.run(look())) is None:
        assert time.monotonic() < deadline, f"no interaction {trace_id}"
        time.sleep(0.02)
    return found


def test_metrics_count_requests_stages_and_tokens(client: TestClient) -> None:
    assert client.post(GENERATE, json={"query": "hello", "mode": "chat"}).status_code == 200
    client.post(GENERATE, json={"query": ""})
    labels = {"method": "POST", "route": GENERATE}
    assert metric(client, "genai_http_requests_total", status="200", **labels) == 1
    assert metric(client, "genai_http_requests_total", status="422", **labels) == 1
    assert metric(client, "genai_http_request_duration_seconds_count", **labels) == 2
    assert metric(client, "genai_stage_duration_seconds_count", stage="llm") == 1
    assert metric(client, "genai_pipeline_requests_total", endpoint="generate", route="chat") == 1
    tokens = {"model": "fake-chat", "key_id": "anonymous", "kind": "completion"}
    assert metric(client, "genai_llm_tokens_total", **tokens) > 0
    assert "text/plain" in client.get("/metrics").headers["content-type"]


def test_one_trace_id_for_header_answer_spans_and_interaction(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    exporter = InMemorySpanExporter()
    with started(settings) as client:
        wait_ready(client)
        provider = client.app.state.telemetry.tracer_provider  # type: ignore[attr-defined]
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        response = client.post(GENERATE, json={"query": "what is a breaker?"})
    body = response.json()
    trace_id = body["trace_id"]
    assert response.headers["x-trace-id"] == trace_id
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root, retrieval, llm = spans[f"POST {GENERATE}"], spans["retrieval"], spans["llm"]
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert dict(root.attributes or {})["http.response.status_code"] == 200
    for span in (root, retrieval, llm):
        assert format(span.context.trace_id, "032x") == trace_id
    assert retrieval.parent.span_id == llm.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    record = interaction(settings, trace_id)
    assert record.endpoint == "generate" and record.status == "ok"
    assert record.request_text == "what is a breaker?"
    assert record.response_text == body["answer"]
    assert record.stages_ms == body["stages_ms"] and record.model == "fake-chat"


def test_failed_requests_are_recorded_too(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with started(settings, FakeChatModel([ProviderUnavailable("down")])) as client:
        wait_ready(client)
        response = client.post(GENERATE, json={"query": "hello", "mode": "chat"})
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "server_error"
        trace_id = response.headers["x-trace-id"]
        assert response.json()["error"]["trace_id"] == trace_id
        errors = {"endpoint": "generate", "status": "error"}
        assert metric(client, "genai_pipeline_requests_total", **errors) == 1
    record = interaction(settings, trace_id)
    assert (record.status, record.error_code) == ("error", "provider_unavailable")


def test_feedback_is_stored_against_the_answer(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with started(settings) as client:
        wait_ready(client)
        trace_id = client.post(GENERATE, json={"query": "hello", "mode": "chat"}).json()["trace_id"]
        made = client.post(
            "/v1/feedback", json={"trace_id": trace_id, "rating": -1, "comment": "meh"}
        )
        assert made.status_code == 201, made.text
        assert made.json()["trace_id"] == trace_id
        unknown = client.post("/v1/feedback", json={"trace_id": "f" * 32, "rating": 1})
        assert unknown.status_code == 404
        for bad in ({"rating": 0}, {"rating": 1, "comment": "x" * 2001}, {"rating": "up"}):
            assert (
                client.post("/v1/feedback", json={"trace_id": trace_id, **bad}).status_code == 422
            )
        assert metric(client, "genai_feedback_total", rating="down") == 1

    async def stored() -> list[FeedbackRecord]:
        engine = await asyncio.to_thread(
            open_interaction_engine, settings.interaction_database_url()
        )
        try:
            return await SqlInteractionLog(engine).feedback(trace_id)
        finally:
            engine.dispose()

    assert [(f.rating, f.comment) for f in asyncio.run(stored())] == [(-1, "meh")]


def test_keys_own_their_answers_and_sessions(tmp_path: Path) -> None:
    settings = priced(tmp_path)
    alice_id, alice = add_key(settings)
    _, bob = add_key(settings)
    with started(settings) as client:
        wait_ready(client)
        asked = client.post(
            GENERATE,
            json={"query": "hi", "mode": "chat", "session_id": "s1"},
            headers={"authorization": alice},
        )
        assert asked.status_code == 200, asked.text
        trace_id = asked.json()["trace_id"]
        rate = {"trace_id": trace_id, "rating": 1}
        assert (
            client.post("/v1/feedback", json=rate, headers={"authorization": bob}).status_code
            == 403
        )
        assert (
            client.post("/v1/feedback", json=rate, headers={"authorization": alice}).status_code
            == 201
        )
        stolen = client.post(
            GENERATE,
            json={"query": "what did alice say?", "mode": "chat", "session_id": "s1"},
            headers={"authorization": bob},
        )
        assert stolen.status_code == 403
        assert stolen.json()["error"]["code"] == "permission_denied"
        assert client.get("/v1/sessions/s1", headers={"authorization": bob}).status_code == 403
        mine = client.get("/v1/sessions/s1", headers={"authorization": alice})
        assert mine.json()["messages"][0]["content"] == "hi"
        assert client.get("/v1/sessions/nope", headers={"authorization": alice}).status_code == 404
        assert client.delete("/v1/sessions/s1", headers={"authorization": alice}).status_code == 200
        assert client.get("/v1/sessions/s1", headers={"authorization": alice}).status_code == 404
        assert client.get("/metrics").status_code == 200  # no key needed
        tokens = {"model": PRICED, "key_id": alice_id, "kind": "prompt"}
        assert metric(client, "genai_llm_tokens_total", **tokens) > 0
    assert interaction(settings, trace_id).key_id == alice_id


def test_limit_and_budget_refusals_are_counted(tmp_path: Path) -> None:
    settings = priced(tmp_path)
    _, limited = add_key(settings, rpm=1)
    _, broke = add_key(settings, budget_usd=0.0001)
    query = {"query": "hello", "mode": "chat"}
    with started(settings) as client:
        wait_ready(client)
        client.post(GENERATE, json=query, headers={"authorization": limited})
        assert (
            client.post(GENERATE, json=query, headers={"authorization": limited}).status_code == 429
        )
        assert (
            client.post(GENERATE, json=query, headers={"authorization": broke}).status_code == 402
        )
        assert metric(client, "genai_gateway_rejections_total", reason="rpm") == 1
        assert metric(client, "genai_gateway_rejections_total", reason="budget") == 1
        refused = {"method": "POST", "route": GENERATE, "status": "429"}
        assert metric(client, "genai_http_requests_total", **refused) == 1


def test_budget_alert_webhook_fires_once_through_the_service(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        observability = {
            "access_log": False,
            "budget_alert_share": 0.01,
            "budget_alert_webhook": hook.url,
        }
        settings = priced(tmp_path, observability=observability)
        key_id, key = add_key(settings, budget_usd=5.0)
        with started(settings) as client:
            wait_ready(client)
            for _ in range(2):
                response = client.post(
                    GENERATE,
                    json={"query": "hello", "mode": "chat"},
                    headers={"authorization": key},
                )
                assert response.status_code == 200
            bodies = hook.wait_for(1)
            time.sleep(0.1)
            assert metric(client, "genai_budget_alerts_total", key_id=key_id) == 1
    assert len(bodies) == 1 and bodies[0]["key_id"] == key_id


def test_breaker_changes_reach_the_gauge(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path), embedder=FakeEmbedder())  # the configured chain
    with TestClient(app) as client:
        wait_ready(client)
        current: Any = app.state.components.model
        while not isinstance(current, CircuitBreakerModel):
            current = current.inner
        current._set(BreakerState.OPEN)
        assert metric(client, "genai_circuit_breaker_state", model=current.name) == 2
        assert client.get("/readyz").json()["breakers"] == {current.name: "open"}
