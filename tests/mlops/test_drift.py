"""``jobs drift``: statistics, windows, the verdict on seeded traffic, the report, the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.mlops.drift import (
    TESTS,
    DriftResult,
    detect_drift,
    holm,
    mmd_test,
    proportion_test,
    resolve_windows,
)
from genai_factory.mlops.drift_report import render_html
from genai_factory.observability.interaction_store import SqlInteractionLog, open_interaction_engine
from genai_factory.testing.fakes import FakeEmbedder
from genai_factory.testing.traffic import OFF_TOPIC_QUESTIONS, TrafficProfile, seed_traffic

NOW = datetime(2026, 3, 2, 12, 0)


def _drift_settings(settings: Settings, **drift: object) -> Settings:
    values = {"permutations": 200, "min_samples": 30, "window_hours": 24.0, **drift}
    update = settings.mlops.drift.model_copy(update=values)
    return settings.model_copy(
        update={"mlops": settings.mlops.model_copy(update={"drift": update})}
    )


def test_holm_matches_the_step_down_rule() -> None:
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})


def test_proportion_test() -> None:
    same = proportion_test([True] * 10 + [False] * 90, [True] * 11 + [False] * 89)
    assert same.p_value > 0.5
    different = proportion_test([True] * 5 + [False] * 95, [True] * 30 + [False] * 70)
    assert different.p_value < 1e-4 and different.statistic > 0
    assert proportion_test([False] * 50, [False] * 40).p_value == 1.0


def _naive_mmd(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / bandwidth))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_statistic_equals_the_definition() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 3)), rng.normal(0.5, 1, size=(9, 3))
    result, null = mmd_test(x, y, permutations=50, seed=0)
    bandwidth = result.reference["bandwidth"]
    assert result.statistic == pytest.approx(_naive_mmd(x, y, bandwidth), rel=1e-9)
    assert len(null) == 50


def test_mmd_permutation_test_separates_shift_from_noise() -> None:
    rng = np.random.default_rng(7)
    same, _ = mmd_test(rng.normal(size=(80, 8)), rng.normal(size=(90, 8)), permutations=300, seed=0)
    shifted, _ = mmd_test(
        rng.normal(size=(80, 8)), rng.normal(0.6, 1, size=(90, 8)), permutations=300, seed=0
    )
    assert same.p_value > 0.05
    assert shifted.p_value < 0.01
    again, _ = mmd_test(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), permutations=60, seed=3)
    assert 0 < again.p_value <= 1


def test_windows(fake_settings: Settings) -> None:
    reference, current = resolve_windows(fake_settings, now=NOW)
    assert current.end == NOW and current.start == NOW - timedelta(hours=24)
    assert reference.end == current.start and reference.start == NOW - timedelta(hours=48)
    reference, current = resolve_windows(
        fake_settings,
        now=NOW,
        reference_start=datetime(2026, 3, 1),
        reference_hours=2,
        current_hours=1,
    )
    assert (reference.start, reference.end) == (datetime(2026, 3, 1), datetime(2026, 3, 1, 2))
    assert current.start == NOW - timedelta(hours=1)
    with pytest.raises(InvalidRequestError):
        resolve_windows(fake_settings, now=NOW, reference_start=NOW - timedelta(minutes=30))


async def _seed(settings: Settings, current: TrafficProfile, count: int = 160) -> None:
    engine = open_interaction_engine(settings.interaction_database_url())
    log = SqlInteractionLog(engine)
    day = timedelta(hours=24)
    await seed_traffic(log, start=NOW - 2 * day, end=NOW - day, count=count, seed=1)
    await seed_traffic(log, start=NOW - day, end=NOW, count=count, profile=current, seed=2)
    await log.aclose()


SHIFTED = TrafficProfile(questions=OFF_TOPIC_QUESTIONS, refusal_rate=0.5, score_mean=0.35)


async def test_stable_traffic_is_not_drift(fake_settings: Settings) -> None:
    settings = _drift_settings(fake_settings)
    settings.data_dir.mkdir(parents=True)
    await _seed(settings, TrafficProfile())
    reference, current = resolve_windows(settings, now=NOW)
    result = await detect_drift(settings, reference, current, embedder=FakeEmbedder())
    verdict = result.verdict()
    assert verdict["drift"] is False, {k: v["p_adjusted"] for k, v in verdict["tests"].items()}
    assert verdict["samples"] == {"reference": 160, "current": 160}
    assert set(verdict["tests"]) == set(TESTS)  # every test had data
    assert verdict["insufficient"] == []


async def test_topic_shift_is_drift(fake_settings: Settings) -> None:
    settings = _drift_settings(fake_settings)
    settings.data_dir.mkdir(parents=True)
    await _seed(settings, SHIFTED)
    reference, current = resolve_windows(settings, now=NOW)
    result = await detect_drift(settings, reference, current, embedder=FakeEmbedder())
    verdict = json.loads(json.dumps(result.verdict()))  # JSON-serialisable
    assert verdict["drift"] is True
    drifted = set(verdict["drifted_tests"])
    assert {"query_embedding", "topic_mix", "refusal_rate", "retrieval_score"} <= drifted
    assert "guard_block_rate" not in drifted
    page = render_html(result)
    assert page.count("<svg") >= 4 and "Drift detected" in page
    assert "sourdough" in page  # topic examples come from the current window's queries


async def test_too_little_traffic_gives_no_verdict(fake_settings: Settings) -> None:
    settings = _drift_settings(fake_settings, min_samples=50)
    settings.data_dir.mkdir(parents=True)
    await _seed(settings, SHIFTED, count=20)
    reference, current = resolve_windows(settings, now=NOW)
    result = await detect_drift(settings, reference, current, embedder=FakeEmbedder())
    assert result.drift is False and result.tests == {}
    assert result.insufficient == list(TESTS)
    assert "not enough data" in render_html(result)


def test_report_escapes_queries() -> None:
    from genai_factory.mlops.drift import Window

    result = DriftResult(
        drift=False,
        tests={},
        reference=Window(NOW - timedelta(hours=2), NOW - timedelta(hours=1)),
        current=Window(NOW - timedelta(hours=1), NOW),
        samples={"reference": 0, "current": 0},
        insufficient=[],
        alpha=0.01,
        plots={
            "topics": [{"topic": 0, "reference": 0.5, "current": 0.5, "examples": ["<script>x"]}]
        },
    )
    page = render_html(result)
    assert "<script>x" not in page and "&lt;script&gt;x" in page


def _config(tmp_path: Path, settings: Settings) -> Path:
    config = tmp_path / "config.yaml"
    body = {
        "data_dir": str(settings.data_dir),
        "embeddings": {"provider": "fake"},
        "mlops": {"drift": {"permutations": 100, "min_samples": 30}},
    }
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    return config


async def test_cli_exit_codes_report_and_tracking(fake_settings: Settings, tmp_path: Path) -> None:
    from genai_factory.cli import app
    from genai_factory.mlops.tracking import configure, import_mlflow

    fake_settings.data_dir.mkdir(parents=True)
    await _seed(fake_settings, SHIFTED, count=100)
    config = _config(tmp_path, fake_settings)
    runner = CliRunner()
    day_before, day = (
        (NOW - timedelta(hours=48)).isoformat(),
        (NOW - timedelta(hours=24)).isoformat(),
    )
    windows = ["--reference-start", day_before + "Z", "--reference-hours", "24",
               "--current-start", day, "--current-hours", "24"]  # fmt: skip
    report = tmp_path / "out" / "drift.html"
    args = ["jobs", "drift", *windows, "--config", str(config), "--json", "--report", str(report)]
    shifted = await _in_thread(runner, app, args)
    assert shifted.exit_code == 3, shifted.output
    verdict = json.loads(shifted.stdout)
    assert verdict["drift"] is True and verdict["run_id"]
    assert report.read_text().startswith("<!DOCTYPE html>")
    mlflow = import_mlflow()
    configure(Settings(_env_file=None, data_dir=fake_settings.data_dir))  # type: ignore[call-arg]
    run = mlflow.get_run(verdict["run_id"])
    assert run.data.tags["job"] == "drift" and run.data.metrics["drift"] == 1.0

    stable = ["jobs", "drift", "--reference-start", (NOW - timedelta(hours=48)).isoformat(),
              "--reference-hours", "12", "--current-start", (NOW - timedelta(hours=36)).isoformat(),
              "--current-hours", "12", "--config", str(config), "--no-track"]  # fmt: skip
    calm = await _in_thread(runner, app, stable)
    assert calm.exit_code == 0, calm.output
    assert "no drift detected" in calm.stdout

    bad = await _in_thread(
        runner, app, ["jobs", "drift", "--current-start", "yesterday", "--config", str(config)]
    )
    assert bad.exit_code == 1 and "ISO 8601" in bad.stderr


async def _in_thread(runner: CliRunner, app: object, args: list[str]) -> object:
    """The CLI runs its own event loop: invoke it off this test's loop."""
    import asyncio

    return await asyncio.to_thread(runner.invoke, app, args)  # type: ignore[arg-type]
