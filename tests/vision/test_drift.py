"""The drift check on image statistics, embeddings and confidence, and the served-input log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genai_factory.config import VisionDriftSettings
from genai_factory.vision.bundle import Reference
from genai_factory.vision.drift import check_drift
from genai_factory.vision.input_log import InputLog, ServedWindow

SETTINGS = VisionDriftSettings(min_samples=20, permutations=200)


def _window(rng: np.random.Generator, n: int, shift: float = 0.0) -> ServedWindow:
    stats = np.column_stack([rng.normal(0.5 + shift, 0.05, n), rng.normal(0.2, 0.02, n)])
    embeddings = rng.normal(shift * 10, 1.0, (n, 8))
    confidences = np.clip(rng.normal(0.9 - shift, 0.05, n), 0.5, 1.0)
    return ServedWindow(stats, embeddings, confidences)


def _reference(rng: np.random.Generator) -> Reference:
    window = _window(rng, 300)
    return Reference(window.statistics, window.embeddings, window.confidences)


def test_same_distribution_is_not_drift() -> None:
    rng = np.random.default_rng(0)
    verdict = check_drift(_reference(rng), _window(rng, 200), SETTINGS)
    assert not verdict.drift and set(verdict.tests) == {
        "pixel_mean",
        "pixel_std",
        "embedding",
        "confidence",
    }


def test_a_shift_is_drift_in_the_shifted_tests() -> None:
    rng = np.random.default_rng(0)
    verdict = check_drift(_reference(rng), _window(rng, 200, shift=0.1), SETTINGS)
    assert verdict.drift
    assert {"pixel_mean", "embedding", "confidence"} <= set(verdict.drifted_tests())
    assert "pixel_std" not in verdict.drifted_tests()


def test_too_few_inputs_give_no_verdict() -> None:
    rng = np.random.default_rng(0)
    verdict = check_drift(_reference(rng), _window(rng, 5, shift=0.3), SETTINGS)
    assert verdict.insufficient and not verdict.drift and verdict.tests == {}


def test_input_log_keeps_the_newest_rows_of_one_version(tmp_path: Path) -> None:
    log = InputLog(tmp_path)
    pixels = np.zeros((3, 28, 28), dtype=np.uint8)
    log.append("1", pixels, np.array([0.9, 0.8, 0.7]), np.ones((3, 4)))
    log.append("2", pixels + 255, np.array([0.6, 0.6, 0.6]), np.zeros((3, 4)))
    with log.path.open("a") as out:
        out.write('{"broken": \n')
    recent = log.recent(2, version="1")
    assert recent.confidences.tolist() == [0.8, 0.7] and recent.embeddings.shape == (2, 4)
    assert log.recent(10).statistics[:, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert len(InputLog(tmp_path / "none").recent(5)) == 0
