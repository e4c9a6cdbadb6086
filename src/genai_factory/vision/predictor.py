"""Run a model bundle: probabilities, labels and penultimate embeddings for a batch of images.

:class:`Predictor` is thread-safe for inference (``torch.inference_mode``, the network in ``eval``
mode, nothing mutated per call), so the service calls it from worker threads. With
``test_time_flip`` the logits of each image and its mirror image are averaged. Probabilities are
``sigmoid(logit / temperature)``; the label is the positive class when the probability reaches the
bundle's threshold (chosen on validation data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from genai_factory.exceptions import ConfigurationError
from genai_factory.vision.bundle import WEIGHTS, Manifest, read_manifest
from genai_factory.vision.model import SmallCNN, build_model
from genai_factory.vision.pixels import U8
from genai_factory.vision.preprocessing import normalise


@dataclass(frozen=True)
class Predictions:
    """Per image: the calibrated positive-class probability, the label index and name."""

    probabilities: NDArray[np.float64]
    label_ids: NDArray[np.int64]
    labels: list[str]
    confidences: NDArray[np.float64]


class Predictor:
    """A loaded bundle, ready to classify ``uint8`` images of the bundle's size."""

    def __init__(self, network: SmallCNN, manifest: Manifest, *, version: str = "bundled") -> None:
        self.network = network.eval()
        self.manifest = manifest
        self.version = version

    @classmethod
    def load(cls, directory: Path, *, version: str = "bundled") -> Predictor:
        manifest = read_manifest(directory)
        network = build_model(manifest.architecture, width=manifest.width, dropout=manifest.dropout)
        try:
            state = torch.load(Path(directory) / WEIGHTS, map_location="cpu", weights_only=True)
            network.load_state_dict(state)
        except (OSError, RuntimeError, KeyError) as exc:
            raise ConfigurationError(f"cannot load the weights of {directory}: {exc}") from exc
        return cls(network, manifest, version=version)

    @property
    def size(self) -> int:
        return self.manifest.image_size

    def _inputs(self, images: U8) -> torch.Tensor:
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size):
            raise ConfigurationError(
                f"expected N×{self.size}×{self.size} images, got {images.shape}"
            )
        return torch.from_numpy(normalise(images))

    def _forward(self, images: U8, with_embeddings: bool) -> tuple[NDArray[np.float64], Any]:
        with torch.inference_mode():
            inputs = self._inputs(images)
            features = self.network.embed(inputs)
            out = self.network.head(features).squeeze(1)
            if self.manifest.test_time_flip:
                out = (out + self.network(torch.flip(inputs, dims=(3,)))) / 2
            embeddings = features.double().numpy() if with_embeddings else None
        return out.double().numpy(), embeddings

    def logits(self, images: U8) -> NDArray[np.float64]:
        """Raw logits (flip-averaged when the bundle says so)."""
        return self._forward(images, False)[0]

    def calibrate(self, logits: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated probabilities of raw logits (temperature scaling)."""
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits / self.manifest.temperature))
        return out

    def probabilities(self, images: U8) -> NDArray[np.float64]:
        return self.calibrate(self.logits(images))

    def decide(self, probabilities: NDArray[np.float64]) -> Predictions:
        label_ids = (probabilities >= self.manifest.threshold).astype(np.int64)
        names = [self.manifest.labels[i] for i in label_ids]
        confidences = np.where(label_ids == 1, probabilities, 1.0 - probabilities)
        return Predictions(probabilities, label_ids, names, confidences)

    def predict(self, images: U8) -> Predictions:
        return self.decide(self.probabilities(images))

    def predict_with_embeddings(self, images: U8) -> tuple[Predictions, NDArray[np.float64]]:
        """Predictions and the penultimate features of the same forward pass."""
        logits, embeddings = self._forward(images, True)
        return self.decide(self.calibrate(logits)), embeddings

    def embed(self, images: U8, batch: int = 512) -> NDArray[np.float64]:
        """Penultimate-layer features, ``(N, D)``."""
        parts: list[Any] = []
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                parts.append(
                    self.network.embed(self._inputs(images[start : start + batch])).numpy()
                )
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 0))
