"""The model bundle: one directory that is registered, served and shipped.

::

    <bundle>/
      model.json     architecture, input size, label names, threshold, temperature, metrics, recipe
      model.pt       the network's weights (a state dict, loaded with ``weights_only=True``)
      reference.npz  the validation set's image statistics, embeddings and confidences (drift)

Loading never unpickles code: the weights are tensors only and the architecture is an allowlisted
name. The bundled demonstration model lives in ``genai_factory/vision/bundled/pneumonia/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genai_factory.exceptions import ConfigurationError, NotFoundError

MANIFEST = "model.json"
WEIGHTS = "model.pt"
REFERENCE = "reference.npz"
FORMAT = 1
DISCLAIMER = (
    "Demonstration model trained on a public research data set (PneumoniaMNIST); "
    "not a medical device and not for diagnostic use."
)


def bundled_model_dir() -> Path:
    """The demonstration model shipped inside the package."""
    return Path(__file__).resolve().parent / "bundled" / "pneumonia"


@dataclass
class Manifest:
    """What ``model.json`` holds."""

    architecture: str
    width: int
    dropout: float
    image_size: int
    labels: tuple[str, str]
    threshold: float
    temperature: float
    test_time_flip: bool
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    format: int = FORMAT

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        if raw.get("format") != FORMAT:
            raise ConfigurationError(f"unsupported model bundle format {raw.get('format')!r}")
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        known["labels"] = tuple(known.get("labels", ("normal", "pneumonia")))
        try:
            return cls(**known)
        except TypeError as exc:
            raise ConfigurationError(f"incomplete model bundle manifest: {exc}") from exc


@dataclass(frozen=True)
class Reference:
    """The validation set as the drift check sees it."""

    statistics: NDArray[np.float64]
    embeddings: NDArray[np.float64]
    confidences: NDArray[np.float64]


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest.as_dict(), indent=2) + "\n")


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise NotFoundError(f"not a model bundle (no {MANIFEST}): {directory}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not JSON ({exc})") from exc
    return Manifest.from_dict(raw)


def write_reference(directory: Path, reference: Reference) -> None:
    np.savez_compressed(
        directory / REFERENCE,
        statistics=reference.statistics.astype(np.float32),
        embeddings=reference.embeddings.astype(np.float16),
        confidences=reference.confidences.astype(np.float32),
    )


def read_reference(directory: Path) -> Reference:
    path = Path(directory) / REFERENCE
    if not path.is_file():
        raise NotFoundError(f"the model bundle has no drift reference: {path}")
    with np.load(path, allow_pickle=False) as archive:
        return Reference(
            archive["statistics"].astype(np.float64),
            archive["embeddings"].astype(np.float64),
            archive["confidences"].astype(np.float64),
        )
