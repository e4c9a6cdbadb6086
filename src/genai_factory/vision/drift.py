"""Has what the image model sees changed? Served inputs against the model's validation reference.

The statistics are the LLM side's (``genai_factory.mlops.drift``: KS, MMD² with a permutation
p-value, Holm correction), applied to image features:

* ``pixel_mean``, ``pixel_std`` — KS on each image's mean brightness and contrast (acquisition,
  exposure, windowing changes);
* ``embedding`` — MMD² between the penultimate-layer embeddings (what the model itself attends to);
* ``confidence`` — KS on the prediction confidence (the model is less sure of what it sees).

Each test's p-value is Holm-adjusted across the four; drift when any adjusted p-value is below
``vision.drift.alpha``. Fewer than ``min_samples`` current inputs: no verdict (not drift).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genai_factory.config import VisionDriftSettings
from genai_factory.mlops.drift import TestResult, holm, ks_test, mmd_test
from genai_factory.vision.bundle import Reference
from genai_factory.vision.input_log import ServedWindow

TESTS = ("pixel_mean", "pixel_std", "embedding", "confidence")
#: Rows per window the MMD uses at most (the kernel matrix is quadratic).
MMD_SAMPLES = 400


@dataclass
class VisionDrift:
    """The verdict and each test."""

    drift: bool
    samples: dict[str, int]
    tests: dict[str, TestResult] = field(default_factory=dict)
    insufficient: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "samples": self.samples,
            "insufficient": self.insufficient,
            "tests": {name: test.as_dict() for name, test in self.tests.items()},
        }

    def drifted_tests(self) -> list[str]:
        return [name for name, test in self.tests.items() if test.drifted]


def _subsample(rows: Any, rng: np.random.Generator) -> Any:
    if len(rows) <= MMD_SAMPLES:
        return rows
    return rows[np.sort(rng.choice(len(rows), MMD_SAMPLES, replace=False))]


def check_drift(
    reference: Reference, current: ServedWindow, settings: VisionDriftSettings
) -> VisionDrift:
    """Compare ``current`` with ``reference`` (see the module docstring)."""
    samples = {"reference": len(reference.confidences), "current": len(current)}
    if len(current) < settings.min_samples:
        return VisionDrift(False, samples, insufficient=True)
    rng = np.random.default_rng(settings.seed)
    tests = {
        "pixel_mean": ks_test(
            reference.statistics[:, 0].tolist(), current.statistics[:, 0].tolist()
        ),
        "pixel_std": ks_test(
            reference.statistics[:, 1].tolist(), current.statistics[:, 1].tolist()
        ),
        "confidence": ks_test(reference.confidences.tolist(), current.confidences.tolist()),
    }
    if current.embeddings.shape[1:] == reference.embeddings.shape[1:]:
        tests["embedding"], _ = mmd_test(
            _subsample(reference.embeddings, rng),
            _subsample(current.embeddings, rng),
            permutations=settings.permutations,
            seed=settings.seed,
        )
    adjusted = holm({name: test.p_value for name, test in tests.items()})
    for name, test in tests.items():
        test.p_adjusted = adjusted[name]
        test.drifted = adjusted[name] < settings.alpha
    return VisionDrift(any(t.drifted for t in tests.values()), samples, tests)
