"""Prometheus metrics of the image model, on the service's own ``CollectorRegistry``.

Families (prefix ``genai_vision_``):

* ``requests_total{endpoint,status}``: prediction requests (``predict``, ``invocations``) by outcome
  (``ok``, ``client_error``, ``error``) — the error rate is the ratio of the latter two to all;
* ``images_total{label}``: images classified, by predicted label (the predicted-class mix);
* ``request_duration_seconds{endpoint}``: time to classify one request's batch;
* ``batch_size``: images per request;
* ``confidence``: histogram of the prediction confidence (the probability of the predicted label);
* ``probability``: histogram of the positive-class probability;
* ``model_info{version}``: 1 for the version being served;
* ``model_swaps_total``: champion changes followed without a restart.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from genai_factory.vision.predictor import Predictions

PREFIX = "genai_vision"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
UNIT_BUCKETS = tuple(i / 20 for i in range(1, 21))


class VisionMetrics:
    """The image model's instruments (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{PREFIX}_requests_total",
            "Vision prediction requests.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.images = Counter(
            f"{PREFIX}_images_total",
            "Images classified, by predicted label.",
            ["label"],
            registry=registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time to classify one request.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch = Histogram(
            f"{PREFIX}_batch_size", "Images per request.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.confidence = Histogram(
            f"{PREFIX}_confidence",
            "Probability of the predicted label.",
            buckets=UNIT_BUCKETS,
            registry=registry,
        )
        self.probability = Histogram(
            f"{PREFIX}_probability",
            "Positive-class probability.",
            buckets=UNIT_BUCKETS,
            registry=registry,
        )
        self.model = Gauge(
            f"{PREFIX}_model_info",
            "The model version being served.",
            ["version"],
            registry=registry,
        )
        self.swaps = Counter(
            f"{PREFIX}_model_swaps_total",
            "Champion changes followed without a restart.",
            registry=registry,
        )

    def served(self, endpoint: str, seconds: float, predictions: Predictions) -> None:
        self.requests.labels(endpoint, "ok").inc()
        self.duration.labels(endpoint).observe(seconds)
        self.batch.observe(len(predictions.labels))
        for label, confidence, probability in zip(
            predictions.labels, predictions.confidences, predictions.probabilities, strict=True
        ):
            self.images.labels(label).inc()
            self.confidence.observe(float(confidence))
            self.probability.observe(float(probability))

    def failed(self, endpoint: str, client_error: bool) -> None:
        self.requests.labels(endpoint, "client_error" if client_error else "error").inc()

    def serving(self, version: str, previous: str | None) -> None:
        if previous is not None and previous != version:
            with contextlib.suppress(KeyError):  # never labelled
                self.model.remove(previous)
            self.swaps.inc()
        self.model.labels(version).set(1)
