"""Classify encoded images: in this process (:class:`LocalClassifier`) or on a SageMaker endpoint
(:class:`SageMakerClassifier`), chosen by ``vision.backend``. Both answer the same JSON shape::

    {"predictions": [{"label", "label_id", "probability", "confidence"}...],
     "model_version", "latency_ms", "disclaimer"}

``probability`` is the calibrated probability of the positive class (``labels[1]``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from genai_factory.config import Settings
from genai_factory.vision.bundle import DISCLAIMER
from genai_factory.vision.pixels import U8
from genai_factory.vision.predictor import Predictions, Predictor
from genai_factory.vision.preprocessing import decode, prepare


class ImageClassifier(Protocol):
    """Classify a batch of encoded images (PNG, JPEG, DICOM); blocking (call it in a thread)."""

    version: str

    def classify(self, images: list[bytes]) -> dict[str, Any]: ...


@dataclass
class Served:
    """One local batch: the answer, and what the drift log and metrics need."""

    body: dict[str, Any]
    pixels: U8
    predictions: Predictions
    embeddings: NDArray[np.float64]


def prediction_rows(predictions: Predictions) -> list[dict[str, Any]]:
    return [
        {
            "label": name,
            "label_id": int(label),
            "probability": round(float(p), 6),
            "confidence": round(float(c), 6),
        }
        for name, label, p, c in zip(
            predictions.labels,
            predictions.label_ids,
            predictions.probabilities,
            predictions.confidences,
            strict=True,
        )
    ]


class LocalClassifier:
    """A :class:`Predictor` behind the classifier interface (decode → prepare → predict)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.version = predictor.version

    @classmethod
    def open(cls, settings: Settings, ref: str | None = None) -> LocalClassifier:
        """The model ``ref`` names, or the one the service would serve (blocking)."""
        from genai_factory.vision.resolve import resolve_bundle, serving_bundle

        found = serving_bundle(settings) if ref is None else resolve_bundle(settings, ref)
        return cls(Predictor.load(found.path, version=found.version))

    def pixels(self, images: list[bytes]) -> U8:
        size = self.predictor.size
        return np.stack([prepare(decode(data), size) for data in images])

    def serve(self, images: list[bytes]) -> Served:
        started = time.perf_counter()
        pixels = self.pixels(images)
        predictions, embeddings = self.predictor.predict_with_embeddings(pixels)
        body = {
            "predictions": prediction_rows(predictions),
            "model_version": self.version,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "disclaimer": DISCLAIMER,
        }
        return Served(body, pixels, predictions, embeddings)

    def classify(self, images: list[bytes]) -> dict[str, Any]:
        return self.serve(images).body


class SageMakerClassifier:
    """Forward each batch to a SageMaker endpoint that runs this package's container."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.version = f"sagemaker:{client.endpoint_name}"

    def classify(self, images: list[bytes]) -> dict[str, Any]:
        started = time.perf_counter()
        body: dict[str, Any] = self.client.invoke(images)
        body["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        body.setdefault("disclaimer", DISCLAIMER)
        return body
