"""``vision loop``: one pass of drift → retrain → gate → promote for the image model.

1. **drift**: the current window — an ``.npz`` of images (``--current``) or the newest served
   inputs of the champion (``<data_dir>/vision/inputs.jsonl``) — against the serving model's
   validation reference (:mod:`genai_factory.vision.drift`), recorded as an MLflow run (job
   ``vision_drift``);
2. **retrain** (on drift, or ``force``): the base training set plus the new labelled images,
   through the :class:`TrainingOrchestrator`, which registers a challenger, checks the recipe's
   gates on the fixed validation set against the champion re-scored on the same set, and promotes
   it when they pass; the service then follows the new champion without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.vision.drift import VisionDrift, check_drift
from genai_factory.vision.input_log import InputLog, ServedWindow
from genai_factory.vision.orchestrator import TrainingOrchestrator, TrainingReport
from genai_factory.vision.predictor import Predictor
from genai_factory.vision.recipe import load_recipe

StepHook = Callable[[str], None]


@dataclass
class LoopOutcome:
    """What one pass found and did."""

    drift: VisionDrift
    serving: str
    drift_run_id: str | None
    training: TrainingReport | None = None

    @property
    def retrained(self) -> bool:
        return self.training is not None

    @property
    def promoted(self) -> bool:
        return self.training is not None and self.training.promoted

    def as_dict(self) -> dict[str, Any]:
        return {
            "serving": self.serving,
            "drift": self.drift.as_dict(),
            "drift_run_id": self.drift_run_id,
            "retrained": self.retrained,
            "promoted": self.promoted,
            "training": None if self.training is None else self.training.as_dict(),
        }

    def summary(self) -> str:
        lines = [f"serving model {self.serving}"]
        if self.drift.insufficient:
            lines.append(f"drift: not enough inputs ({self.drift.samples['current']})")
        else:
            tests = ", ".join(
                f"{n} p={t.p_adjusted:.3g}{' DRIFT' if t.drifted else ''}"
                for n, t in self.drift.tests.items()
            )
            lines.append(f"drift: {'yes' if self.drift.drift else 'no'} ({tests})")
        if self.training is not None:
            e = self.training.evaluation
            lines.append(
                f"challenger v{self.training.version}: val AUC {e.auc:.4f} accuracy {e.accuracy:.4f}"
            )
            lines += [g.line() for g in self.training.gates]
            lines.append(
                "promoted to champion" if self.promoted else "not promoted: the champion stays"
            )
        return "\n".join(lines)


def current_window(predictor: Predictor, settings: Settings, current: Path | None) -> ServedWindow:
    """The images to check: an ``.npz`` file, or what the service served with this model."""
    if current is None:
        log = InputLog(settings.data_dir / "vision")
        return log.recent(settings.vision.drift.window, version=predictor.version)
    from genai_factory.vision.data import load_npz
    from genai_factory.vision.preprocessing import image_statistics

    images = load_npz(current, predictor.size).images[-settings.vision.drift.window :]
    predictions, embeddings = predictor.predict_with_embeddings(images)
    return ServedWindow(image_statistics(images), embeddings, predictions.confidences)


def _track(settings: Settings, verdict: VisionDrift, version: str) -> str:
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    mlflow = import_mlflow()
    tags = {"drift": str(verdict.drift).lower(), "model_version": version}
    with tracked_run(settings, "vision-drift", job="vision_drift", tags=tags) as run:
        metrics = {
            "drift": float(verdict.drift),
            "current_samples": float(verdict.samples["current"]),
        }
        for name, test in verdict.tests.items():
            metrics[f"{name}_statistic"] = test.statistic
            metrics[f"{name}_p_adjusted"] = test.p_adjusted
        mlflow.log_metrics(metrics)
        mlflow.log_dict(verdict.as_dict(), "drift/vision_verdict.json")
        return str(run.info.run_id)


def run_vision_loop(
    settings: Settings,
    *,
    current: Path | None = None,
    new_data: Path | None = None,
    train: Path | None = None,
    val: Path | None = None,
    recipe_file: Path | None = None,
    force: bool = False,
    on_step: StepHook | None = None,
) -> LoopOutcome:
    """One pass (see the module docstring); blocking."""
    from genai_factory.vision.bundle import read_reference
    from genai_factory.vision.resolve import serving_bundle

    step = on_step or (lambda _: None)
    step("drift")
    serving = serving_bundle(settings)
    predictor = Predictor.load(serving.path, version=serving.version)
    verdict = check_drift(
        read_reference(serving.path),
        current_window(predictor, settings, current),
        settings.vision.drift,
    )
    outcome = LoopOutcome(verdict, serving.version, _track(settings, verdict, serving.version))
    if not (verdict.drift or force):
        return outcome
    train = train or settings.vision.train_data
    val = val or settings.vision.val_data
    if train is None or val is None:
        raise ConfigurationError(
            "retraining needs --train and --val (or vision.train_data / val_data)"
        )
    step("retrain")
    orchestrator = TrainingOrchestrator(
        settings, load_recipe(recipe_file or settings.vision.recipe)
    )
    extra = None
    if new_data is not None:
        extra = orchestrator.load(new_data)
    outcome.training = orchestrator.run(train, val, extra=extra)
    return outcome
