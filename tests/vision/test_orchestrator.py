"""The orchestrator on the MLOps core: MLflow run, registry version, gates, promotion."""

from __future__ import annotations

from pathlib import Path

from genai_factory.config import Settings
from genai_factory.mlops.gates import Gate
from genai_factory.mlops.registry import ModelRegistry
from genai_factory.mlops.tracking import import_mlflow
from genai_factory.vision.data import ImageSet
from genai_factory.vision.orchestrator import TrainingOrchestrator
from genai_factory.vision.recipe import Recipe
from genai_factory.vision.resolve import resolve_bundle, serving_bundle


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]


def test_train_registers_logs_and_promotes_then_gates_a_worse_challenger(
    tmp_path: Path, tiny_recipe: Recipe, train_set: ImageSet, val_set: ImageSet
) -> None:
    settings = _settings(tmp_path)
    stages: list[str] = []
    recipe = tiny_recipe.model_copy(
        update={"gates": [Gate(metric="auc", min=0.6, max_regression=0.0)]}
    )
    first = TrainingOrchestrator(settings, recipe, on_stage=stages.append).run(
        train_set, val_set, keep=tmp_path / "kept"
    )
    assert stages == ["load", "fit", "evaluate", "log", "register", "gate"]
    assert first.promoted and first.version == 1 and (tmp_path / "kept" / "model.json").is_file()
    registry = ModelRegistry(settings)
    champion = registry.by_alias(settings.vision.model_name, "champion")
    assert champion is not None and champion.version == 1
    assert serving_bundle(settings).version == "1"

    run = import_mlflow().get_run(first.run_id)
    assert run.data.metrics["val_auc"] > 0.6 and run.data.tags["job"] == "train_vision"
    client = import_mlflow().MlflowClient()
    assert {"evaluation", "registry"} <= {a.path for a in client.list_artifacts(first.run_id)}
    assert any(
        a.path.endswith("val.png") for a in client.list_artifacts(first.run_id, "evaluation")
    )
    info = import_mlflow().models.get_model_info(first.model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 1, 28, 28)

    # one epoch of a width-4 network cannot match the champion: the gate keeps it a challenger
    worse = recipe.model_copy(update={"epochs": 1, "learning_rate": 1e-5})
    second = TrainingOrchestrator(settings, worse).run(train_set, val_set)
    assert second.version == 2 and not second.promoted
    assert second.champion_metrics is not None
    assert any(g.failed and "regression" in g.condition for g in second.gates)
    assert registry.by_alias(settings.vision.model_name, "champion").version == 1  # type: ignore[union-attr]
    assert resolve_bundle(settings, "challenger").version == "2"
