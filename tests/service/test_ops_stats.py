"""The operations figures (``GET /v1/admin/stats``) and the web UI's routes, with the fake model."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.llm.breaker import CircuitBreakerModel
from genai_factory.llm.fallback import FallbackModel
from genai_factory.llm.retry import RetryingModel
from genai_factory.messages import Message
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interactions import InteractionRecord, utc_now
from genai_factory.observability.stats import (
    MAX_KEYS,
    OTHER_KEYS,
    StatsRow,
    breaker_states,
    guard_events_of,
    percentiles,
    summarize,
)
from genai_factory.service import create_app
from genai_factory.service.routes.ui import ASSETS, UI_DIR
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

MODEL = "fake-chat"
PRICING = {MODEL: {"input_per_million": 1000.0, "output_per_million": 2000.0}}


def _row(
    status: str = "ok", key: str | None = "k1", latency: float = 10.0, **kw: object
) -> StatsRow:
    values: dict[str, object] = {
        "status": status,
        "key_id": key,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.5,
        "latency_ms": latency,
    }
    values.update(kw)
    return StatsRow(**values)  # type: ignore[arg-type]


# -- the pure figures ------------------------------------------------------------------------


def test_percentiles_interpolate_linearly_and_are_none_without_values() -> None:
    assert percentiles([40.0, 10.0, 30.0, 20.0], (50, 95)) == [25.0, 38.5]
    assert percentiles([7.0], (50, 95)) == [7.0, 7.0]
    assert percentiles([], (50, 95)) == [None, None]


def test_summary_counts_statuses_keys_and_served_latency_only() -> None:
    rows = [
        _row(latency=100.0),
        _row(latency=300.0, key="k2", cost_usd=2.0),
        _row("error", latency=5000.0, prompt_tokens=0, completion_tokens=0, cost_usd=0.0),
        _row("blocked", key=None, latency=1.0, prompt_tokens=0, completion_tokens=0, cost_usd=0),
    ]
    stats = summarize(rows, window_minutes=60, since=utc_now())
    assert (stats.requests, stats.errors, stats.rows) == (4, 1, 4)
    assert stats.by_status == {"blocked": 1, "error": 1, "ok": 2}
    # Errors and blocks end early: only served answers count for latency.
    assert (stats.p50_latency_ms, stats.p95_latency_ms) == (200.0, 290.0)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.cost_usd) == (20, 10, 2.5)
    keys = {k.key_id: k for k in stats.keys}
    assert [k.key_id for k in stats.keys] == ["k2", "k1", "anonymous"]  # dearest first
    assert (keys["k1"].requests, keys["k1"].errors, keys["k1"].cost_usd) == (2, 1, 0.5)
    assert keys["anonymous"].requests == 1


def test_guard_events_from_reports_and_blocks() -> None:
    report = {
        "input": [{"guard": "pii", "action": "redact", "flagged": True}],
        "dropped_sources": [{"guard": "injection", "index": 2}],
        "output": [{"guard": "groundedness", "action": "allow", "flagged": True}],
    }
    assert guard_events_of(report) == [
        ("pii", "redact", "input"),
        ("groundedness", "flag", "output"),
        ("injection", "drop", "sources"),
    ]
    assert guard_events_of({"blocked": True, "reason": "prompt_injection"}) == [
        ("prompt_injection", "block", "request")
    ]
    for junk in (None, "text", [], {"input": "x"}, {"output": [1, None]}):
        assert guard_events_of(junk) == []
    rows = [_row(safety=report), _row(safety=report), _row("blocked", safety={"blocked": True})]
    events = summarize(rows, window_minutes=5, since=utc_now()).guard_events
    counted = {(e.guard, e.action, e.stage): e.count for e in events}
    assert counted[("pii", "redact", "input")] == 2
    assert counted[("unknown", "block", "request")] == 1


def test_many_keys_are_capped_with_the_rest_summed() -> None:
    rows = [_row(key=f"key{i:03d}", cost_usd=float(i)) for i in range(MAX_KEYS + 10)]
    keys = summarize(rows, window_minutes=60, since=utc_now()).keys
    assert len(keys) == MAX_KEYS
    assert keys[0].key_id == f"key{MAX_KEYS + 9:03d}"
    assert keys[-1].key_id == OTHER_KEYS
    assert sum(k.requests for k in keys) == MAX_KEYS + 10
    assert keys[-1].cost_usd == pytest.approx(sum(range(11)))


async def test_breaker_states_walk_the_fallback_chain() -> None:
    broken = CircuitBreakerModel(
        FakeChatModel([ProviderUnavailable("down")], name="primary"), failure_threshold=1
    )
    healthy = CircuitBreakerModel(FakeChatModel(["ok"], name="backup"))
    chain = FallbackModel(RetryingModel(broken, max_attempts=1), RetryingModel(healthy))
    answer = await chain.chat([Message.user("hi")])
    assert answer.text == "ok"
    states = breaker_states(chain, {"primary": "closed", "elsewhere": "half_open"})
    assert [(b.backend, b.state) for b in states] == [
        ("primary", "open"),  # read live: the stale report does not win
        ("backup", "closed"),
        ("elsewhere", "half_open"),
    ]
    assert breaker_states(FakeChatModel()) == []


# -- the endpoint ----------------------------------------------------------------------------


def _settings(tmp_path: Path, *, auth: bool) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": MODEL, "max_tokens": 64, "pricing": PRICING},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        auth={"enabled": auth, "key_cache_s": 0},
        observability={"access_log": False},
    )


def _seed(settings: Settings, records: list[InteractionRecord]) -> None:
    async def write() -> None:
        engine = await asyncio.to_thread(
            open_interaction_engine, settings.interaction_database_url()
        )
        store = SqlInteractionLog(engine)
        await store.record(records)
        await store.aclose()

    asyncio.run(write())


@dataclass
class Service:
    client: TestClient
    admin: str
    user: str
    user_id: str


def _start(settings: Settings, model: FakeChatModel) -> Iterator[TestClient]:
    app = create_app(settings, model=CircuitBreakerModel(model), embedder=FakeEmbedder())
    with TestClient(app) as client:
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.02)
        yield client


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _start(_settings(tmp_path, auth=False), FakeChatModel(name=MODEL))


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Service]:
    settings = _settings(tmp_path, auth=True)
    admin, admin_plain = new_key("ops", admin=True)
    user, user_plain = new_key("app")

    async def add() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        store = SqlKeyStore(engine)
        await store.add(admin)
        await store.add(user)
        engine.dispose()

    asyncio.run(add())
    for client in _start(settings, FakeChatModel(name=MODEL)):
        yield Service(client, admin_plain, user_plain, user.id)


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_stats_are_open_when_auth_is_off_and_count_streamed_and_failed_requests(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, auth=False)
    model = FakeChatModel(["first answer", ProviderUnavailable("backend down")], name=MODEL)
    for client in _start(settings, model):
        empty = client.get("/v1/admin/stats").json()
        assert (empty["requests"], empty["p50_latency_ms"], empty["keys"]) == (0, None, [])
        streamed = client.post(
            "/v1/assistant/generate", json={"query": "hello there", "mode": "chat", "stream": True}
        )
        assert "event: end" in streamed.text
        failed = client.post("/v1/assistant/generate", json={"query": "again", "mode": "chat"})
        assert failed.status_code >= 500
        stats = client.get("/v1/admin/stats", params={"minutes": 5}).json()
    assert stats["window_minutes"] == 5
    assert (stats["requests"], stats["errors"]) == (2, 1)
    assert stats["by_status"] == {"error": 1, "ok": 1}
    assert stats["p50_latency_ms"] is not None and stats["p50_latency_ms"] > 0
    [anonymous] = stats["keys"]
    assert anonymous["key_id"] == "anonymous" and anonymous["requests"] == 2
    assert anonymous["completion_tokens"] > 0 and anonymous["cost_usd"] > 0
    assert stats["breakers"] == [{"backend": MODEL, "state": "closed"}]


def test_stats_window_and_percentiles_over_logged_rows(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth=False)
    now = utc_now()
    records = [
        InteractionRecord(
            trace_id=f"t{i}",
            endpoint="generate",
            status="ok",
            request_text="q",
            key_id="k1",
            latency_ms=float(ms),
            prompt_tokens=3,
            cost_usd=0.25,
            created_at=now - timedelta(minutes=1),
        )
        for i, ms in enumerate((10, 20, 30, 40, 50, 60, 70, 80, 90, 100))
    ]
    records.append(
        InteractionRecord(
            trace_id="old",
            endpoint="generate",
            status="error",
            request_text="q",
            key_id="k9",
            latency_ms=9999.0,
            created_at=now - timedelta(hours=2),
        )
    )
    _seed(settings, records)
    for client in _start(settings, FakeChatModel(name=MODEL)):
        hour = client.get("/v1/admin/stats", params={"minutes": 60}).json()
        day = client.get("/v1/admin/stats", params={"minutes": 1440}).json()
        refused = client.get("/v1/admin/stats", params={"minutes": 0})
    assert (hour["requests"], hour["errors"]) == (10, 0)
    assert (hour["p50_latency_ms"], hour["p95_latency_ms"]) == (55.0, 95.5)
    assert hour["keys"] == [
        {
            "key_id": "k1",
            "requests": 10,
            "errors": 0,
            "prompt_tokens": 30,
            "completion_tokens": 0,
            "cost_usd": 2.5,
        }
    ]
    assert (day["requests"], day["errors"]) == (11, 1)
    assert {k["key_id"] for k in day["keys"]} == {"k1", "k9"}
    assert refused.status_code == 422


def test_stats_need_an_admin_key_when_auth_is_on(keyed: Service) -> None:
    client = keyed.client
    assert client.get("/v1/admin/stats").status_code == 401
    assert client.get("/v1/admin/stats", headers=_bearer(keyed.user)).status_code == 403
    answered = client.post(
        "/v1/assistant/generate",
        json={"query": "what is a budget?", "mode": "chat"},
        headers=_bearer(keyed.user),
    )
    assert answered.status_code == 200, answered.text
    usage = answered.json()["usage"]
    stats = client.get("/v1/admin/stats", headers=_bearer(keyed.admin))
    assert stats.status_code == 200, stats.text
    [row] = stats.json()["keys"]
    assert row["key_id"] == keyed.user_id
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["cost_usd"] == pytest.approx(usage["cost_usd"])
    assert usage["cost_usd"] > 0


# -- the UI routes ---------------------------------------------------------------------------


def test_ui_pages_and_assets_are_served_without_a_key_but_data_is_not(keyed: Service) -> None:
    client = keyed.client
    for path in ("/ui", "/ui/ops"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
    for name, media_type in ASSETS.items():
        asset = client.get(f"/ui/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"] == media_type
    assert client.get("/ui/assets/chat.html").status_code == 404
    assert client.get("/ui/assets/missing.js").status_code == 404
    # The pages hold no data: everything else still needs the key.
    assert client.post("/v1/assistant/generate", json={"query": "hi"}).status_code == 401
    assert client.get("/v1/admin/stats").status_code == 401


def test_ui_pages_only_reference_local_assets() -> None:
    for page in ("chat.html", "ops.html"):
        html = (UI_DIR / page).read_text(encoding="utf-8")
        references = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert references, page
        for reference in references:
            if reference.startswith("/ui/assets/"):
                assert reference.removeprefix("/ui/assets/") in ASSETS, reference
            else:
                assert reference in {"/ui", "/ui/ops", "data:,"}, reference
    for name in ASSETS:
        # The SVG namespace is a name, not a download.
        text = (UI_DIR / name).read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, name
        assert "innerHTML" not in text, name  # API text is set as textContent only


def test_ui_works_with_auth_off(open_client: TestClient) -> None:
    page = open_client.get("/ui")
    assert page.status_code == 200
    assert 'id="api-key"' in page.text
    # The operations page's data is open too; the key endpoints keep needing an admin key.
    assert open_client.get("/v1/admin/stats").status_code == 200
    assert open_client.get("/v1/admin/keys").status_code == 401
