"""Metrics, threshold choice and calibration on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from genai_factory.vision.evaluation import (
    choose_threshold,
    evaluate,
    expected_calibration_error,
    fit_temperature,
)


def test_confusion_and_rates() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    probs = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7])
    result = evaluate(probs, labels, 0.5)
    assert result.confusion == ((2, 1), (1, 3))
    assert result.sensitivity == pytest.approx(3 / 4)
    assert result.specificity == pytest.approx(2 / 3)
    assert result.accuracy == pytest.approx(5 / 7)
    assert result.auc == pytest.approx(11 / 12)
    assert result.as_dict()["n"] == 7


def test_youden_threshold_separates_perfectly_separable_scores() -> None:
    labels = np.array([0] * 10 + [1] * 30)
    probs = np.concatenate([np.linspace(0.5, 0.7, 10), np.linspace(0.75, 0.99, 30)])
    threshold = choose_threshold(probs, labels, "youden")
    assert 0.7 < threshold < 0.75
    assert evaluate(probs, labels, threshold).accuracy == 1.0
    assert choose_threshold(probs, labels, "fixed", 0.3) == 0.3


def test_temperature_fixes_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    true_logits = (labels * 2 - 1) * 1.0 + rng.normal(0, 1.0, 4000)
    overconfident = true_logits * 5
    temperature = fit_temperature(overconfident, labels)
    assert 2.0 < temperature < 3.0  # the ideal is 5 / 2 (log-odds are 2x here)
    before = expected_calibration_error(1 / (1 + np.exp(-overconfident)), labels)
    after = expected_calibration_error(1 / (1 + np.exp(-overconfident / temperature)), labels)
    assert after < before / 2


def test_prevalence_threshold_moves_up_when_positives_get_rarer() -> None:
    from genai_factory.vision.evaluation import prevalence_threshold

    labels = np.array([1] * 389 + [0] * 135)  # PneumoniaMNIST validation: 74 % positive
    assert prevalence_threshold(labels, 389 / 524) == pytest.approx(0.5)
    assert prevalence_threshold(labels, 0.625) == pytest.approx(0.6336, abs=1e-4)
    probs = np.linspace(0, 1, len(labels))
    assert choose_threshold(probs, labels, "prevalence", prevalence=0.625) == pytest.approx(
        0.6336, abs=1e-4
    )
