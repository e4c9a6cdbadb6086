"""The training pipeline's configuration: a YAML file of data only, validated, names allowlisted.

``vision train --config FILE`` reads a :class:`Recipe`; every field has a default, so the empty
file (or no file) is the default recipe the bundled model was trained with. ``architecture`` is a
``Literal`` name resolved by :func:`genai_factory.vision.model.build_model`, so a recipe can choose
among registered networks but never make the process import a class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genai_factory.exceptions import ConfigurationError
from genai_factory.mlops.gates import Gate

Architecture = Literal["small_cnn"]
ThresholdRule = Literal["prevalence", "youden", "accuracy", "fixed"]


class Augmentation(BaseModel):
    """Random transforms applied to each training batch (on the tensor, no image library)."""

    model_config = ConfigDict(extra="forbid")

    rotation_deg: float = Field(default=10.0, ge=0, le=45)
    translate: float = Field(default=0.08, ge=0, le=0.3)
    scale: float = Field(default=0.10, ge=0, le=0.5)
    horizontal_flip: bool = True
    contrast: float = Field(default=0.25, ge=0, le=1)
    brightness: float = Field(default=0.10, ge=0, le=1)
    noise: float = Field(default=0.02, ge=0, le=0.5)


def _default_gates() -> list[Gate]:
    return [
        Gate(metric="auc", min=0.90, max_regression=0.005),
        Gate(metric="balanced_accuracy", min=0.80),
    ]


class Recipe(BaseModel):
    """How a model is trained, evaluated and gated (see docs/vision.md for the reasoning)."""

    model_config = ConfigDict(extra="forbid")

    architecture: Architecture = "small_cnn"
    width: int = Field(default=32, ge=4, le=256)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    image_size: int = Field(default=28, ge=8, le=512)
    labels: tuple[str, str] = ("normal", "pneumonia")
    epochs: int = Field(default=30, ge=1, le=500)
    batch_size: int = Field(default=128, ge=1, le=4096)
    learning_rate: float = Field(default=3e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    label_smoothing: float = Field(default=0.05, ge=0, lt=0.5)
    class_weighting: bool = True
    patience: int = Field(default=8, ge=1)
    seed: int = 0
    threads: int = Field(default=2, ge=1, le=256)
    test_time_flip: bool = True
    threshold_rule: ThresholdRule = "prevalence"
    threshold: float = Field(default=0.5, gt=0, lt=1)
    #: The positive share expected where the model is used (``threshold_rule: prevalence``); the
    #: default is the documented class mix of PneumoniaMNIST's official test split (62.5 %).
    deployment_prevalence: float = Field(default=0.625, gt=0, lt=1)
    augmentation: Augmentation = Field(default_factory=Augmentation)
    gates: list[Gate] = Field(default_factory=_default_gates)
    max_seconds: float = Field(default=600.0, gt=0)


def load_recipe(path: Path | str | None = None, **overrides: Any) -> Recipe:
    """The recipe in ``path`` (YAML mapping), or the default one; ``overrides`` win."""
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read the recipe {file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"the recipe {file} must be a YAML mapping")
        data.update(loaded)
    data.update(overrides)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid recipe: {exc}") from exc
