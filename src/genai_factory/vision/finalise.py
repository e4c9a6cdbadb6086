"""From a fitted network to a model bundle: calibration, threshold and drift reference on validation.

On the validation set: the temperature that minimises log-loss (calibration), the decision threshold
by the recipe's rule on the calibrated probabilities, the metrics at that threshold, and the drift
reference (per-image statistics, penultimate embeddings of at most :data:`REFERENCE_SAMPLES`
images, confidences). Then the bundle is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genai_factory.vision.bundle import (
    WEIGHTS,
    Manifest,
    Reference,
    write_manifest,
    write_reference,
)
from genai_factory.vision.data import ImageSet
from genai_factory.vision.evaluation import Evaluation, choose_threshold, evaluate, fit_temperature
from genai_factory.vision.predictor import Predictor
from genai_factory.vision.preprocessing import image_statistics
from genai_factory.vision.recipe import Recipe
from genai_factory.vision.training import Fitted

REFERENCE_SAMPLES = 500


def drift_reference(predictor: Predictor, images: Any, seed: int = 0) -> Reference:
    """Statistics, embeddings and confidences of (a seeded subset of) ``images``."""
    if len(images) > REFERENCE_SAMPLES:
        pick = np.sort(
            np.random.default_rng(seed).choice(len(images), REFERENCE_SAMPLES, replace=False)
        )
        images = images[pick]
    return Reference(
        image_statistics(images), predictor.embed(images), predictor.predict(images).confidences
    )


def finalise(
    fitted: Fitted, val: ImageSet, recipe: Recipe, directory: Path, data: dict[str, Any]
) -> tuple[Predictor, Evaluation]:
    """Calibrate, choose the threshold, evaluate on ``val`` and write the bundle to ``directory``."""
    manifest = Manifest(
        architecture=recipe.architecture,
        width=recipe.width,
        dropout=recipe.dropout,
        image_size=recipe.image_size,
        labels=recipe.labels,
        threshold=0.5,
        temperature=1.0,
        test_time_flip=recipe.test_time_flip,
        recipe=recipe.model_dump(mode="json"),
        data=data,
    )
    predictor = Predictor(fitted.network, manifest, version="candidate")
    logits = predictor.logits(val.images)
    manifest.temperature = fit_temperature(logits, val.labels)
    probabilities = predictor.probabilities(val.images)
    manifest.threshold = choose_threshold(
        probabilities,
        val.labels,
        recipe.threshold_rule,
        recipe.threshold,
        recipe.deployment_prevalence,
    )
    result = evaluate(probabilities, val.labels, manifest.threshold)
    manifest.metrics = {f"val_{k}": round(v, 6) for k, v in result.metrics().items()}
    manifest.metrics["best_epoch"] = float(fitted.best_epoch)
    manifest.metrics["train_seconds"] = round(fitted.seconds, 2)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(fitted.network.state_dict(), directory / WEIGHTS)
    write_manifest(directory, manifest)
    write_reference(directory, drift_reference(predictor, val.images, recipe.seed))
    return predictor, result
