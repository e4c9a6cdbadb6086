"""``vision loop``: drift on a shifted window → retrain → gate → promote; the service follows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.config import Settings
from genai_factory.mlops.gates import Gate
from genai_factory.vision.data import ImageSet
from genai_factory.vision.loop import run_vision_loop
from genai_factory.vision.orchestrator import TrainingOrchestrator
from genai_factory.vision.recipe import Recipe
from genai_factory.vision.service import VisionService

from .conftest import save_npz, synthetic


def _settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        vision={"drift": {"min_samples": 20, "permutations": 100}},
    )


def test_a_shifted_window_drifts_and_the_retrained_model_is_promoted_and_served(
    tmp_path: Path, tiny_recipe: Recipe, train_set: ImageSet, val_set: ImageSet
) -> None:
    settings = _settings(tmp_path)
    first = tiny_recipe.model_copy(update={"gates": [Gate(metric="auc", min=0.5)]})
    assert TrainingOrchestrator(settings, first).run(train_set, val_set).promoted  # champion v1
    same = save_npz(synthetic(60, seed=5), tmp_path / "same.npz")
    shifted_set = synthetic(60, seed=6, contrast=0.3)
    shifted = save_npz(shifted_set, tmp_path / "shifted.npz")
    train = save_npz(train_set, tmp_path / "train.npz")
    val = save_npz(val_set, tmp_path / "val.npz")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "width: 4\nepochs: 3\nbatch_size: 32\nthreads: 1\nlearning_rate: 0.01\n"
        "gates: [{metric: auc, min: 0.5}]\n"
    )

    quiet = run_vision_loop(settings, current=same, train=train, val=val, recipe_file=recipe)
    assert quiet.serving == "1" and not quiet.drift.drift and not quiet.retrained

    service = VisionService(settings)
    before = service._open()
    assert before.version == "1"

    outcome = run_vision_loop(
        settings, current=shifted, new_data=shifted, train=train, val=val, recipe_file=recipe
    )
    assert outcome.drift.drift and "pixel_std" in outcome.drift.drifted_tests()
    assert outcome.retrained and outcome.promoted and outcome.training is not None
    assert outcome.training.version == 2 and outcome.drift_run_id
    assert "promoted to champion" in outcome.summary()

    service._classifier = before
    import asyncio

    assert asyncio.run(service.follow()) is True
    assert service._classifier is not None and service._classifier.version == "2"


def test_the_loop_reads_served_inputs_and_needs_enough_of_them(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"GENAI_DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(app, ["vision", "loop", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"insufficient": true' in result.stdout


def test_retraining_without_data_is_a_configuration_error(tmp_path: Path) -> None:
    shifted = save_npz(synthetic(40, seed=6, contrast=0.3), tmp_path / "shifted.npz")
    runner = CliRunner()
    env = {"GENAI_DATA_DIR": str(tmp_path / "data"), "GENAI_VISION__DRIFT__MIN_SAMPLES": "20"}
    result = runner.invoke(app, ["vision", "loop", "--current", str(shifted), "--force"], env=env)
    assert result.exit_code == 1 and "--train" in result.output
    assert np.load(shifted)["images"].shape == (40, 28, 28)
