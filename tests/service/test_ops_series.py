"""The operations page's charts and MLOps panel: ``GET /v1/admin/stats/series`` (time buckets of
the interaction log) and ``GET /v1/admin/mlops`` (the registry's state), with the fake model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.llm.breaker import CircuitBreakerModel
from genai_factory.mlops.state import gate_lines, outcome_of, previous_of
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interactions import InteractionRecord, utc_now
from genai_factory.observability.series import SeriesRow, bucket_series, stage_timings
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

MODEL = "fake-chat"
PRICING = {MODEL: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
SINCE = datetime(2026, 1, 1, 12, 0, 0)
UNTIL = SINCE + timedelta(minutes=60)


def _row(minute: float, status: str = "ok", latency: float = 10.0, **kw: object) -> SeriesRow:
    values: dict[str, object] = {
        "created_at": SINCE + timedelta(minutes=minute),
        "status": status,
        "cost_usd": 0.25,
        "latency_ms": latency,
        "stages_ms": {},
    }
    values.update(kw)
    return SeriesRow(**values)  # type: ignore[arg-type]


# -- the pure bucketing -----------------------------------------------------------------------


def test_rows_fall_into_equal_buckets_with_counts_cost_and_percentiles() -> None:
    rows = [
        _row(1, latency=100.0, stages_ms={"retrieval": 10.0, "llm": 80.0}),
        _row(2, latency=300.0, stages_ms={"retrieval": 30.0, "llm": 260.0}),
        _row(5, "error", latency=9000.0, cost_usd=0.0, stages_ms={"retrieval": 999.0}),
        _row(14.99, latency=50.0, cost_usd=1.0),
        _row(45, latency=20.0, stages_ms={"llm": 15.0, "junk": "x", "flag": True}),
        _row(60, latency=40.0),  # exactly at the end: the last bucket
        _row(-1, latency=5.0),  # before the window: ignored
        _row(61, latency=5.0),  # after it: ignored
    ]
    series = bucket_series(rows, since=SINCE, until=UNTIL, buckets=4)
    assert (series.window_minutes, series.bucket_seconds, series.rows) == (60, 900.0, 6)
    assert series.stages == ["llm", "retrieval"]
    first, second, third, last = series.buckets
    assert (first.start, first.end, last.end) == (SINCE, SINCE + timedelta(minutes=15), UNTIL)
    assert (first.requests, first.errors, first.cost_usd) == (4, 1, 1.5)
    # Served requests only: the 9 s error does not count for latency.
    assert (first.p50_latency_ms, first.p95_latency_ms) == (100.0, 280.0)
    stages = {s.stage: s for s in first.stages}
    assert (stages["retrieval"].count, stages["retrieval"].p50_ms) == (2, 20.0)
    assert (stages["llm"].p50_ms, stages["llm"].p95_ms) == (170.0, 251.0)
    # An empty bucket is kept, with zeros and no latency.
    assert (second.requests, second.errors, second.cost_usd) == (0, 0, 0.0)
    assert (second.p50_latency_ms, second.p95_latency_ms, second.stages) == (None, None, [])
    assert (third.requests, [s.stage for s in third.stages]) == (0, [])
    assert (last.requests, last.p50_latency_ms, last.cost_usd) == (2, 30.0, 0.5)
    assert [(s.stage, s.p50_ms) for s in last.stages] == [("llm", 15.0)]


def test_empty_window_and_bad_arguments() -> None:
    series = bucket_series([], since=SINCE, until=UNTIL, buckets=3)
    assert [b.requests for b in series.buckets] == [0, 0, 0]
    assert (series.rows, series.stages, series.truncated) == (0, [], False)
    with pytest.raises(ValueError, match="buckets"):
        bucket_series([], since=SINCE, until=UNTIL, buckets=0)
    with pytest.raises(ValueError, match="end after"):
        bucket_series([], since=UNTIL, until=SINCE)
    assert stage_timings(None) == {} and stage_timings({"a": 1, "b": None}) == {"a": 1.0}


def test_mlops_tag_parsing() -> None:
    tags = {
        "gate.1": "FAILED  exact_match >= 0.5: 0.42 < 0.5",
        "gate.0": "PASSED  f1 no regression: 0.61 vs 0.60",
        "gate.x": "ignored",
        "gates": "failed",
    }
    assert [(g.status, g.text) for g in gate_lines(tags)] == [
        ("passed", "f1 no regression: 0.61 vs 0.60"),
        ("failed", "exact_match >= 0.5: 0.42 < 0.5"),
    ]
    assert outcome_of("eval_suite", tags) == "gates failed"
    assert outcome_of("drift", {"drift": "true"}) == "drift"
    assert outcome_of("reindex", {"decision": "activated"}) == "activated"
    assert outcome_of("train_llm", {}) is None
    assert previous_of({"previous_champion": '[1, "2", "x"]'}) == [1, 2]
    assert previous_of({"previous_champion": "not json"}) == []


# -- the endpoints ----------------------------------------------------------------------------


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


def _start(settings: Settings) -> Iterator[TestClient]:
    app = create_app(
        settings, model=CircuitBreakerModel(FakeChatModel(name=MODEL)), embedder=FakeEmbedder()
    )
    with TestClient(app) as client:
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.02)
        yield client


def _record(trace: str, ago: timedelta, status: str = "ok", **kw: object) -> InteractionRecord:
    return InteractionRecord(
        trace_id=trace,
        endpoint="generate",
        status=status,
        request_text="q",
        key_id="k1",
        created_at=utc_now() - ago,
        **kw,  # type: ignore[arg-type]
    )


def test_series_endpoint_buckets_the_logged_rows(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth=False)
    records = [
        _record(
            "a",
            timedelta(minutes=55),
            latency_ms=100.0,
            cost_usd=0.5,
            stages_ms={"retrieval": 10.0, "llm": 90.0},
        ),
        _record(
            "b",
            timedelta(minutes=54),
            latency_ms=300.0,
            cost_usd=0.5,
            stages_ms={"retrieval": 30.0, "llm": 270.0},
        ),
        _record("c", timedelta(minutes=5), "error", latency_ms=5.0),
        _record("old", timedelta(hours=3), latency_ms=1.0, cost_usd=9.0),
    ]
    _seed(settings, records)
    for client in _start(settings):
        hour = client.get("/v1/admin/stats/series", params={"minutes": 60, "buckets": 6})
        empty = client.get("/v1/admin/stats/series", params={"minutes": 1, "buckets": 2}).json()
        too_many = client.get("/v1/admin/stats/series", params={"buckets": 10_000})
        schema = client.get("/openapi.json").json()
    assert hour.status_code == 200, hour.text
    series = hour.json()
    assert (series["window_minutes"], series["rows"], series["truncated"]) == (60, 3, False)
    assert series["stages"] == ["llm", "retrieval"]
    assert [b["requests"] for b in series["buckets"]] == [2, 0, 0, 0, 0, 1]
    assert [b["errors"] for b in series["buckets"]] == [0, 0, 0, 0, 0, 1]
    first = series["buckets"][0]
    assert (first["cost_usd"], first["p50_latency_ms"], first["p95_latency_ms"]) == (
        1.0,
        200.0,
        290.0,
    )
    assert {s["stage"]: s["p95_ms"] for s in first["stages"]} == {"llm": 261.0, "retrieval": 29.0}
    assert series["buckets"][-1]["p50_latency_ms"] is None  # only an error in it
    assert series["since"].endswith("+00:00")
    assert [b["requests"] for b in empty["buckets"]] == [0, 0]
    assert too_many.status_code == 422
    for path in ("/v1/admin/stats/series", "/v1/admin/mlops"):
        responses = schema["paths"][path]["get"]["responses"]
        assert {"200", "401", "403", "503"} <= set(responses), path


def test_series_and_mlops_need_an_admin_key_when_auth_is_on(tmp_path: Path) -> None:
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
    for client in _start(settings):
        for path in ("/v1/admin/stats/series", "/v1/admin/mlops"):
            assert client.get(path).status_code == 401, path
            user_headers = {"authorization": f"Bearer {user_plain}"}
            assert client.get(path, headers=user_headers).status_code == 403, path
            answer = client.get(path, headers={"authorization": f"Bearer {admin_plain}"})
            assert answer.status_code == 200, answer.text


def test_mlops_state_is_empty_without_a_registry(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth=False)
    for client in _start(settings):
        started = time.monotonic()
        state = client.get("/v1/admin/mlops").json()
        elapsed = time.monotonic() - started
    assert (state["registry"], state["models"], state["drift"], state["runs"]) == (
        False,
        [],
        None,
        [],
    )
    assert state["error"] is None
    assert elapsed < 2.0
    assert not (settings.data_dir / "mlflow.db").exists()  # reading created nothing


def test_mlops_state_reports_aliases_drift_and_gates(tmp_path: Path) -> None:
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    settings = _settings(tmp_path, auth=False)
    mlflow = import_mlflow()
    registry = ModelRegistry(settings)
    name = settings.mlops.llm_name
    for number in (1, 2, 3):
        artefact = tmp_path / f"m{number}.gguf"
        artefact.write_bytes(b"GGUF%d" % number)
        registry.register(name, artefact)
    registry.promote(name, 1)
    registry.promote(name, 2)
    report = tmp_path / "drift_report.html"
    report.write_text("<html>report</html>", encoding="utf-8")
    with tracked_run(settings, "drift", job="drift", tags={"drift": "true"}):
        mlflow.log_params({"alpha": 0.05})
        mlflow.log_metrics({"prompt_length_p_adjusted": 0.001, "error_rate_p_adjusted": 0.4})
        mlflow.log_artifact(str(report), "drift")
    suite_tags = {
        "gates": "failed",
        "gate.0": "PASSED  f1 >= 0.3: 0.5",
        "gate.1": "FAILED  exact_match >= 0.5: 0.2 < 0.5",
    }
    with (
        tracked_run(settings, "suite-x", job="eval_suite", tags=suite_tags),
        tracked_run(settings, "challenger", job="eval_candidate"),
    ):
        pass  # a suite's child run per candidate: not listed
    for client in _start(settings):
        state = client.get("/v1/admin/mlops").json()
        metrics = _mlops_metrics(client)
    assert state["error"] is None and state["registry"] is True
    [model] = state["models"]
    assert (model["name"], model["champion"], model["challenger"]) == (name, 2, 3)
    assert (model["latest_version"], model["previous_champions"]) == (3, [1])
    drift = state["drift"]
    assert (drift["drift"], drift["drifted_tests"]) == (True, ["prompt_length"])
    assert drift["report"].endswith("drift/drift_report.html")
    assert drift["run_url"] is None  # embedded store: no MLflow UI to link to
    jobs = [run["job"] for run in state["runs"]]
    assert "eval_candidate" not in jobs
    suite = next(run for run in state["runs"] if run["job"] == "eval_suite")
    assert (suite["outcome"], suite["gates"], suite["status"]) == (
        "gates failed",
        "failed",
        "FINISHED",
    )
    assert [g["status"] for g in suite["gate_results"]] == ["passed", "failed"]
    assert jobs[0] == "eval_suite"  # newest first
    assert {"drift", "register"} <= set(jobs)
    # The same state as Prometheus gauges (read by the service's refresh task).
    assert f'genai_model_version{{alias="champion",model="{name}"}} 2.0' in metrics
    assert f'genai_model_version{{alias="challenger",model="{name}"}} 3.0' in metrics
    assert f'genai_drift_detected{{run_id="{drift["run_id"]}"}} 1.0' in metrics
    assert 'genai_eval_gate_results{status="passed"} 1.0' in metrics
    assert 'genai_eval_gate_results{status="failed"} 1.0' in metrics
    assert 'genai_job_last_run_timestamp_seconds{job="eval_suite",status="FINISHED"}' in metrics


def _mlops_metrics(client: TestClient) -> str:
    """``/metrics`` once the refresh task has read the registry (it starts with the service)."""
    deadline = time.monotonic() + 30
    while "genai_model_version{" not in (text := client.get("/metrics").text):
        assert time.monotonic() < deadline, "the MLOps gauges never appeared"
        time.sleep(0.1)
    return text


def test_mlops_gauges_follow_the_state() -> None:
    from genai_factory.mlops.state import DriftState, GateLine, JobRun, MlopsState, ModelState
    from genai_factory.observability.metrics import Metrics

    metrics = Metrics()
    now = utc_now()
    run = JobRun(
        run_id="r1",
        job="eval_suite",
        name="suite",
        status="FINISHED",
        started_at=now,
        ended_at=now,
        outcome=None,
        gates="passed",
        gate_results=[GateLine(status="passed", text="f1 >= 0.3")],
    )
    state = MlopsState(
        generated_at=now,
        registry=True,
        models=[
            ModelState(
                name="m", champion=4, challenger=None, latest_version=4, previous_champions=[]
            )
        ],
        drift=DriftState(
            run_id="d1", at=now, drift=False, drifted_tests=[], report=None, run_url=None
        ),
        runs=[run],
    )
    metrics.observe_mlops(state)
    text = metrics.render().decode()
    assert 'genai_model_version{alias="champion",model="m"} 4.0' in text
    assert 'alias="challenger"' not in text  # no challenger: no series
    assert 'genai_drift_detected{run_id="d1"} 0.0' in text
    assert 'genai_eval_gate_results{status="failed"} 0.0' in text
    # A later read without the model removes its series.
    metrics.observe_mlops(state.model_copy(update={"models": [], "drift": None, "runs": []}))
    text = metrics.render().decode()
    assert "genai_model_version{" not in text and "genai_drift_detected{" not in text
