"""``TrainingOrchestrator``: validate → load → fit → evaluate → log to MLflow → register → gate → promote.

Reuses the MLOps core: runs are :func:`genai_factory.mlops.tracking.tracked_run` runs (job
``train_vision``), the bundle is registered with :class:`genai_factory.mlops.registry.ModelRegistry`
as the ``challenger`` of ``vision.model_name``, the recipe's gates are
:class:`genai_factory.mlops.gates.Gate` conditions checked by :func:`check_gates` against the
current champion *re-scored on the same validation set*, and a pass promotes it to ``champion``.
Besides the registered bundle, the network is logged as an MLflow PyTorch model with a signature and
an input example (the run's MLflow logged model ``model``), and the validation ROC / confusion plot as ``evaluation/val.png``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genai_factory.config import Settings
from genai_factory.mlops.gates import GateResult, check_gates
from genai_factory.vision.data import ImageSet, load_dataset
from genai_factory.vision.evaluation import Evaluation, evaluate
from genai_factory.vision.recipe import Recipe
from genai_factory.vision.training import EpochHook, Fitted, fit

JOB = "train_vision"
#: Reports a stage name (``load``, ``fit``, ...) as the pipeline enters it.
StageHook = Callable[[str], None]


@dataclass
class TrainingReport:
    """What one orchestrated training did."""

    metrics: dict[str, float]
    evaluation: Evaluation
    version: int | None
    promoted: bool
    gates: list[GateResult] = field(default_factory=list)
    champion_metrics: dict[str, float] | None = None
    run_id: str | None = None
    model_uri: str | None = None
    bundle: Path | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "evaluation": self.evaluation.as_dict(),
            "version": self.version,
            "promoted": self.promoted,
            "gates": [g.__dict__ for g in self.gates],
            "champion_metrics": self.champion_metrics,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "train_seconds": round(self.seconds, 2),
        }


def score(predictor: Any, data: ImageSet) -> Evaluation:
    """A predictor's metrics on ``data`` at its own threshold."""
    return evaluate(predictor.probabilities(data.images), data.labels, predictor.manifest.threshold)


class TrainingOrchestrator:
    """Train, log, register and (if the gates pass) promote one image model."""

    def __init__(
        self,
        settings: Settings,
        recipe: Recipe,
        *,
        on_stage: StageHook | None = None,
        on_epoch: EpochHook | None = None,
        register: bool = True,
    ) -> None:
        self.settings = settings
        self.recipe = recipe
        self.on_stage = on_stage
        self.on_epoch = on_epoch
        self.register = register

    def _stage(self, name: str) -> None:
        if self.on_stage is not None:
            self.on_stage(name)

    def load(self, path: Path) -> ImageSet:
        return load_dataset(path, self.recipe.labels, self.recipe.image_size)

    def run(
        self,
        train: Path | ImageSet,
        val: Path | ImageSet,
        *,
        extra: ImageSet | None = None,
        keep: Path | None = None,
    ) -> TrainingReport:
        """The whole pipeline; ``extra`` (new labelled data) is appended to the training set;
        ``keep``: also copy the bundle to this folder (replacing it)."""
        import torch

        torch.set_num_threads(self.recipe.threads)
        self._stage("load")
        train_set = train if isinstance(train, ImageSet) else self.load(train)
        val_set = val if isinstance(val, ImageSet) else self.load(val)
        if extra is not None:
            train_set = train_set.concat(extra)
        data = {
            "train": str(train) if isinstance(train, Path) else "in-memory",
            "val": str(val) if isinstance(val, Path) else "in-memory",
            "train_counts": train_set.counts(),
            "val_counts": val_set.counts(),
            "extra": 0 if extra is None else len(extra),
        }
        self._stage("fit")
        fitted = fit(train_set, val_set, self.recipe, self.on_epoch)
        with tempfile.TemporaryDirectory(prefix="vision-") as scratch:
            report = self._finish(fitted, val_set, data, Path(scratch) / "bundle")
            if keep is not None:
                if keep.exists():
                    shutil.rmtree(keep)
                shutil.copytree(Path(scratch) / "bundle", keep)
                report.bundle = keep
            return report

    def _finish(
        self, fitted: Fitted, val_set: ImageSet, data: dict[str, Any], bundle: Path
    ) -> TrainingReport:
        from genai_factory.vision.finalise import finalise

        self._stage("evaluate")
        predictor, result = finalise(fitted, val_set, self.recipe, bundle, data)
        metrics = {f"val_{k}": v for k, v in result.metrics().items()}
        report = TrainingReport(metrics, result, None, False, seconds=fitted.seconds)
        if not self.register:
            return report
        self._stage("log")
        from genai_factory.mlops.tracking import tracked_run

        with tracked_run(self.settings, "train-vision", job=JOB) as run:
            report.run_id = str(run.info.run_id)
            report.model_uri = self._log(fitted, predictor, val_set, result, bundle)
            self._stage("register")
            self._register_and_gate(report, val_set, bundle)
        return report

    def _log(
        self, fitted: Fitted, predictor: Any, val: ImageSet, result: Evaluation, bundle: Path
    ) -> str:
        from genai_factory.mlops.tracking import import_mlflow
        from genai_factory.vision.mlflow_model import log_network
        from genai_factory.vision.plots import evaluation_figure

        mlflow = import_mlflow()
        params = {k: v for k, v in self.recipe.model_dump(mode="json").items() if k != "gates"}
        params["augmentation"] = str(params["augmentation"])
        mlflow.log_params(params)
        for row in fitted.history:
            step = int(row["epoch"])
            mlflow.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"}, step=step)
        mlflow.log_metrics(
            {f"val_{k}": v for k, v in result.metrics().items()}
            | {"best_epoch": float(fitted.best_epoch), "train_seconds": fitted.seconds}
        )
        mlflow.log_dict(result.as_dict(), "evaluation/val.json")
        probabilities = predictor.probabilities(val.images)
        plot = evaluation_figure(
            probabilities, val.labels, result, self.recipe.labels, bundle.parent / "val.png"
        )
        mlflow.log_artifact(str(plot), "evaluation")
        return log_network(predictor, val.images[:4])

    def _register_and_gate(self, report: TrainingReport, val: ImageSet, bundle: Path) -> None:
        from genai_factory.mlops.registry import ModelRegistry
        from genai_factory.mlops.tracking import import_mlflow
        from genai_factory.vision.predictor import Predictor
        from genai_factory.vision.resolve import resolve_bundle

        registry = ModelRegistry(self.settings)
        name = self.settings.vision.model_name
        champion = registry.by_alias(name, "champion")
        tags = {"val_auc": f"{report.evaluation.auc:.4f}", "kind": "vision"}
        version = registry.register(name, bundle, run_id=report.run_id, tags=tags)
        report.version = version.version
        challenger = report.evaluation.metrics()
        if champion is not None:
            ref = resolve_bundle(self.settings, str(champion.version))
            report.champion_metrics = score(Predictor.load(ref.path), val).metrics()
        self._stage("gate")
        report.gates = check_gates(self.recipe.gates, challenger, report.champion_metrics)
        passed = not any(g.failed for g in report.gates)
        mlflow = import_mlflow()
        mlflow.log_metric("gates_passed", float(passed))
        if report.champion_metrics:
            mlflow.log_metrics({f"champion_val_{k}": v for k, v in report.champion_metrics.items()})
        if passed:
            registry.promote(name, version.version)
            report.promoted = True
        mlflow.set_tag("promoted", str(report.promoted).lower())


def describe_counts(data: ImageSet) -> str:
    counts = np.bincount(data.labels, minlength=2)
    return f"{len(data)} images ({counts[0]} / {counts[1]})"
