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
from genai_factory.mlops.tracking import configure, import_mlflow, tracked_run
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.testing.fakes import FakeChatModel
from genai_factory.testing.traffic import OFF_TOPIC_QUESTIONS, TrafficProfile, seed_traffic

from .conftest import oracle

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


# -- the fine-tuning path (training replaced by a registration, models by fakes) ---------------
SUITE = """
name: loop
candidates: {challenger: challenger, champion: champion}
evaluators:
  - {kind: qa, dataset: qa.jsonl, limit: 4}
gates:
  - {metric: qa.f1, min: 0.5}
  - {metric: qa.f1, max_regression: 0.01}
"""


def _fake_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``train_llm`` registers a file as the new challenger, then someone else registers another
    challenger: the loop must still evaluate (and promote) the version its training made."""
    from genai_factory.mlops.training import finetune

    def train(settings: Settings, data: Path, lora: object) -> finetune.LLMTrainingResult:
        registry = ModelRegistry(settings)
        adapter = tmp_path / "adapter.gguf"
        adapter.write_bytes(b"GGUF trained")
        with tracked_run(settings, "train-llm", job="train_llm") as run:
            run_id = str(run.info.run_id)
            trained = registry.register(settings.mlops.llm_name, adapter, run_id=run_id)
        other = tmp_path / "other.gguf"
        other.write_bytes(b"GGUF other")
        registry.register(settings.mlops.llm_name, other)
        return finetune.LLMTrainingResult(
            gguf=str(adapter),
            adapter=str(adapter),
            adapter_bytes=12,
            base="base",
            data=str(data),
            data_sha256="0" * 64,
            examples=8,
            skipped_too_long=0,
            sources={"squad": 8},
            params={},
            losses=[2.0, 1.5, 1.0],
            train_seconds=0.1,
            trainable_parameters=1,
            run_id=run_id,
            registered_version=trained.version,
        )

    monkeypatch.setattr(finetune, "train_llm", train)


def _models(monkeypatch: pytest.MonkeyPatch, good: str) -> None:
    """Version ``good`` answers every question right; every other reference answers wrong."""
    from genai_factory.mlops import evaluation

    def load(settings: Settings, ref: str) -> FakeChatModel:
        return FakeChatModel([oracle(ref == good)] * 10)  # type: ignore[list-item]

    monkeypatch.setattr(evaluation, "load_model", load)


async def test_training_pass_promotes_the_version_it_trained_and_times_each_step(
    fake_settings: Settings, qa_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = qa_file.parent / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    _fake_training(monkeypatch, qa_file.parent)
    _models(monkeypatch, good="1")
    result = await run_loop(
        fake_settings, train_data=qa_file, suite=suite, reindex=False, force=True
    )

    assert [step.name for step in result.steps] == ["drift", "train", "evaluate"]
    evaluate = result.steps[2]
    assert evaluate.detail["candidates"]["challenger"] == "1"
    assert evaluate.detail["promoted"] == 1, evaluate.detail["failures"]
    assert result.promoted == [f"{fake_settings.mlops.llm_name} v1"]
    champion = ModelRegistry(fake_settings).by_alias(fake_settings.mlops.llm_name, "champion")
    assert champion is not None and champion.version == 1
    assert all(step.seconds >= 0 for step in result.steps)
    assert result.seconds >= max(step.seconds for step in result.steps)
    assert "total" in result.summary()
    # Training runs in a worker thread: its run is still a child of the loop's run.
    runs = {run.info.run_id: run for run in _runs(fake_settings)}  # type: ignore[attr-defined]
    for step in result.steps:
        assert runs[step.run_id].data.tags["mlflow.parentRunId"] == result.run_id, step.name


async def test_failed_gates_promote_nothing(
    fake_settings: Settings, qa_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = qa_file.parent / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    _fake_training(monkeypatch, qa_file.parent)
    _models(monkeypatch, good="default")  # the model as shipped beats the trained version
    result = await run_loop(
        fake_settings, train_data=qa_file, suite=suite, reindex=False, force=True
    )

    evaluate = result.steps[-1]
    assert evaluate.outcome.startswith("gates failed")
    assert "promoted" not in evaluate.detail and result.promoted == []
    assert any(line.startswith("FAILED") for line in evaluate.detail["gates"])
    assert ModelRegistry(fake_settings).by_alias(fake_settings.mlops.llm_name, "champion") is None
