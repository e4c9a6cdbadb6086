"""``jobs loop --once``: drift decides whether the pass acts; every step is recorded in MLflow."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.mlops.drift import utc_now
from genai_factory.mlops.loop import run_loop
from genai_factory.mlops.registry import ModelRegistry
from genai_factory.mlops.tracking import configure, import_mlflow
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.testing.traffic import OFF_TOPIC_QUESTIONS, TrafficProfile, seed_traffic

SHIFTED = TrafficProfile(questions=OFF_TOPIC_QUESTIONS, refusal_rate=0.5, score_mean=0.35)


def _settings(settings: Settings) -> Settings:
    drift = settings.mlops.drift.model_copy(update={"permutations": 200, "min_samples": 30})
    return settings.model_copy(update={"mlops": settings.mlops.model_copy(update={"drift": drift})})


async def _seed(settings: Settings, current: TrafficProfile, count: int = 120) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = SqlInteractionLog(open_interaction_engine(settings.interaction_database_url()))
    now, day = utc_now(), timedelta(hours=24)
    await seed_traffic(log, start=now - 2 * day, end=now - day, count=count, seed=1)
    await seed_traffic(log, start=now - day, end=now, count=count, profile=current, seed=2)
    await log.aclose()


def _runs(settings: Settings) -> list[object]:
    mlflow = import_mlflow()
    return list(mlflow.search_runs([configure(settings)], output_format="list"))


async def test_drift_triggers_a_reindex_recorded_under_one_loop_run(
    fake_settings: Settings,
) -> None:
    settings = _settings(fake_settings)
    await _seed(settings, SHIFTED)
    result = await run_loop(settings)

    assert result.drift and result.acted
    assert [step.name for step in result.steps] == ["drift", "reindex"]
    reindex = result.steps[1]
    assert reindex.detail["activated"]
    assert result.promoted == [
        f"{settings.mlops.index_name} v{reindex.detail['registered_version']}"
    ]
    champion = ModelRegistry(settings).by_alias(settings.mlops.index_name, "champion")
    assert champion is not None and champion.version == reindex.detail["registered_version"]

    runs = {run.info.run_id: run for run in _runs(settings)}  # type: ignore[attr-defined]
    loop = runs[result.run_id]
    assert loop.data.tags["loop.drift"] == "true"
    assert loop.data.tags["loop.promoted"] == ", ".join(result.promoted)
    for step in result.steps:
        assert step.run_id in runs
        assert loop.data.tags[f"loop.step.{step.name}.run_id"] == step.run_id


async def test_without_drift_the_pass_stops_after_the_check(fake_settings: Settings) -> None:
    settings = _settings(fake_settings)
    await _seed(settings, TrafficProfile())
    result = await run_loop(settings)
    assert not result.drift and not result.acted
    assert [step.name for step in result.steps] == ["drift", "act"]
    assert result.promoted == []
    assert ModelRegistry(settings).by_alias(settings.mlops.index_name, "champion") is None


async def test_training_in_the_loop_needs_a_suite(fake_settings: Settings) -> None:
    data = fake_settings.data_dir.parent / "train.jsonl"
    data.write_text("{}\n")
    with pytest.raises(ConfigurationError, match="suite"):
        await run_loop(fake_settings, train_data=data)


def test_cli_prints_the_pass_as_json(fake_settings: Settings, tmp_path: Path) -> None:
    import asyncio

    settings = _settings(fake_settings)
    asyncio.run(_seed(settings, SHIFTED))
    config = tmp_path / "settings.yaml"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(settings.data_dir),
                "llm": {"provider": "fake", "model": "fake-chat"},
                "embeddings": {"provider": "fake"},
                "rag": {"knowledge_dirs": [str(p) for p in settings.rag.knowledge_dirs]},
                "mlops": {"drift": {"permutations": 200, "min_samples": 30}},
            }
        )
    )
    outcome = CliRunner().invoke(app, ["jobs", "loop", "--once", "--json", "--config", str(config)])
    assert outcome.exit_code == 0, outcome.output
    body = json.loads(outcome.stdout)
    assert body["drift"] is True
    assert [step["name"] for step in body["steps"]] == ["drift", "reindex"]
