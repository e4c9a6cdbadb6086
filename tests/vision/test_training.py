"""Training a tiny network, writing its bundle and predicting with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genai_factory.exceptions import ConfigurationError, InvalidRequestError
from genai_factory.vision.bundle import read_manifest, read_reference
from genai_factory.vision.data import ImageSet
from genai_factory.vision.finalise import finalise
from genai_factory.vision.predictor import Predictor
from genai_factory.vision.recipe import Recipe, load_recipe
from genai_factory.vision.training import fit


def test_a_few_epochs_learn_the_synthetic_task_and_the_bundle_reloads(
    tmp_path: Path, tiny_recipe: Recipe, train_set: ImageSet, val_set: ImageSet
) -> None:
    seen: list[int] = []
    fitted = fit(train_set, val_set, tiny_recipe, lambda epoch, total, row: seen.append(epoch))
    assert seen == [1, 2, 3] and 1 <= fitted.best_epoch <= 3
    predictor, result = finalise(fitted, val_set, tiny_recipe, tmp_path / "bundle", {"n": 1})
    assert result.auc > 0.8
    manifest = read_manifest(tmp_path / "bundle")
    assert manifest.metrics["val_auc"] == pytest.approx(result.auc, abs=1e-6)
    assert 0 < manifest.threshold < 1 and manifest.temperature > 0
    reloaded = Predictor.load(tmp_path / "bundle", version="7")
    np.testing.assert_allclose(
        reloaded.probabilities(val_set.images), predictor.probabilities(val_set.images), atol=1e-6
    )
    reference = read_reference(tmp_path / "bundle")
    assert reference.embeddings.shape == (len(val_set), 16)
    predictions, embeddings = reloaded.predict_with_embeddings(val_set.images[:5])
    assert embeddings.shape == (5, 16) and set(predictions.labels) <= {"normal", "pneumonia"}


def test_training_is_seeded(tiny_recipe: Recipe, train_set: ImageSet, val_set: ImageSet) -> None:
    recipe = tiny_recipe.model_copy(update={"epochs": 1})
    first = fit(train_set, val_set, recipe).network.state_dict()
    second = fit(train_set, val_set, recipe).network.state_dict()
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)


def test_one_class_data_is_refused(tiny_recipe: Recipe, val_set: ImageSet) -> None:
    only = ImageSet(val_set.images[:4], np.zeros(4, dtype=np.int64))
    with pytest.raises(InvalidRequestError, match="both classes"):
        fit(only, val_set, tiny_recipe)


def test_recipe_files_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("epochs: 5\ngates:\n  - {metric: auc, min: 0.9}\n")
    assert load_recipe(path).epochs == 5
    path.write_text("architecture: os.system\n")
    with pytest.raises(ConfigurationError, match="architecture"):
        load_recipe(path)
    path.write_text("epochs: 5\nunknown: 1\n")
    with pytest.raises(ConfigurationError):
        load_recipe(path)
