"""``train guard``: the safety classifiers' trainer, tracked in MLflow and registered.

The training itself is :mod:`genai_factory.safety_training.training` (the same code that produced the
shipped artefacts); this module runs it into a fresh directory, logs its manifest (parameters, the
data hash, every held-out metric) to an MLflow run and registers the directory as the
``challenger`` of ``<guard_prefix><guard>``. Nothing is deployed until ``models promote`` makes
it the champion: the service then loads it ahead of ``<data_dir>/safety`` and the shipped
artefacts, without a restart (:mod:`genai_factory.mlops.champion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.mlops.guard_champions import TRAINABLE_GUARDS

GUARDS = TRAINABLE_GUARDS
#: The dataset files each guard needs (relative to the datasets directory).
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "injection": (
        "prompt_injection/train.csv",
        "prompt_injection/val.csv",
        "jailbreak/train.csv",
    ),
    "toxicity": ("toxicity/dev.csv",),
    "names": (),
}


@dataclass
class GuardTrainingResult:
    guard: str
    directory: str
    version: str
    metrics: dict[str, float]
    run_id: str | None = None
    registered_version: int | None = None
    aliases: list[str] = field(default_factory=list)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"deepset_val": {"f1": 0.9}}`` → ``{"deepset_val.f1": 0.9}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def _params(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Manifest entries that describe the training (short scalars), as MLflow params."""
    skipped = {"metrics", "libraries", "trained_at", "name", "version"}
    params: dict[str, str] = {}
    for key, value in manifest.items():
        if key in skipped or isinstance(value, Mapping):
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        params[key] = text[:500]
    return params


def check_datasets(guard: str, datasets: Path) -> None:
    """Fail early, with the file name, when a dataset the guard needs is missing."""
    if guard not in GUARDS:
        raise InvalidRequestError(f"unknown guard {guard!r}: choose one of {', '.join(GUARDS)}")
    missing = [name for name in REQUIRED_FILES[guard] if not (datasets / name).is_file()]
    if missing:
        raise InvalidRequestError(f"missing dataset files in {datasets}: {', '.join(missing)}")


def _train(guard: str, datasets: Path, out: Path) -> dict[str, Any]:
    from genai_factory.safety_training import training

    if guard == "injection":
        return training.train_injection(datasets, out)
    if guard == "toxicity":
        return training.train_toxicity(datasets, out)
    return training.train_names(out)


def train_guard(
    settings: Settings,
    guard: str,
    datasets: Path,
    *,
    out: Path | None = None,
    register: bool = True,
) -> GuardTrainingResult:
    """Train one guard into ``out``, track the run and register the directory as challenger."""
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    check_datasets(guard, datasets)
    out = out or settings.data_dir / "training" / f"guard-{guard}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    mlflow = import_mlflow()
    with tracked_run(settings, f"train-guard-{guard}", job="train_guard") as run:
        manifest = _train(guard, datasets, out)
        metrics = flatten_metrics(manifest.get("metrics", {}))
        mlflow.log_params({"guard": guard, "datasets": str(datasets), **_params(manifest)})
        mlflow.set_tags({"data_sha256": str(manifest.get("data_sha256", ""))})
        if metrics:
            mlflow.log_metrics(metrics)
        mlflow.log_dict(manifest, "manifest.json")
        result = GuardTrainingResult(
            guard=guard,
            directory=str(out),
            version=str(manifest.get("version", "")),
            metrics=metrics,
            run_id=str(run.info.run_id),
        )
        if register:
            version = ModelRegistry(settings).register(
                f"{settings.mlops.guard_prefix}{guard}",
                out,
                run_id=result.run_id,
                tags={"manifest_version": result.version},
                description=f"{guard} guard trained on {datasets}",
            )
            result.registered_version = version.version
            result.aliases = list(version.aliases)
    return result
