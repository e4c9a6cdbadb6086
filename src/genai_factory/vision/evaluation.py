"""Binary-classifier evaluation: AUC, accuracy, sensitivity, specificity, confusion, calibration.

Pure numpy/scikit-learn functions over probabilities and labels (1 = the positive class,
``pneumonia``). Probabilities are calibrated on validation data by temperature scaling of the logits
(:func:`fit_temperature`), and the decision threshold is chosen on the same data
(:func:`choose_threshold`). The default rule, ``prevalence``, is Bayes' accuracy-optimal decision
for the class mix expected in use: the calibrated odds are re-weighted from the validation
prevalence (PneumoniaMNIST: 74 % positive) to the expected one (its official test split: 62.5 %),
which moves the threshold up (0.63 instead of 0.5) and so trades a little sensitivity for
specificity, where a harder set of normal images costs most. ``youden`` maximises sensitivity +
specificity on validation (independent of the class mix, but on PneumoniaMNIST's easy validation
normals it lands very low); ``accuracy`` maximises validation accuracy; ``fixed`` takes the
recipe's ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

F64 = NDArray[np.float64]
ECE_BINS = 10


@dataclass(frozen=True)
class Evaluation:
    """What one model scored on one labelled set at one threshold."""

    n: int
    auc: float
    accuracy: float
    sensitivity: float
    specificity: float
    balanced_accuracy: float
    ece: float
    threshold: float
    confusion: tuple[tuple[int, int], tuple[int, int]]

    def metrics(self) -> dict[str, float]:
        """The numeric metrics (for gates and MLflow)."""
        return {
            "auc": self.auc,
            "accuracy": self.accuracy,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "balanced_accuracy": self.balanced_accuracy,
            "ece": self.ece,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.metrics(),
            "n": self.n,
            "threshold": self.threshold,
            "confusion_matrix": [list(row) for row in self.confusion],
        }


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def expected_calibration_error(
    probabilities: F64, labels: NDArray[Any], bins: int = ECE_BINS
) -> float:
    """ECE of the positive-class probability over ``bins`` equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(probabilities[mask].mean() - labels[mask].mean())
    return float(total)


def evaluate(probabilities: F64, labels: NDArray[Any], threshold: float) -> Evaluation:
    """Every metric of ``probabilities`` against ``labels`` at ``threshold``."""
    labels = np.asarray(labels).astype(np.int64)
    predicted = (probabilities >= threshold).astype(np.int64)
    tn = int(((predicted == 0) & (labels == 0)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    tp = int(((predicted == 1) & (labels == 1)).sum())
    both = len(np.unique(labels)) == 2
    sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return Evaluation(
        n=len(labels),
        auc=float(roc_auc_score(labels, probabilities)) if both else float("nan"),
        accuracy=_ratio(tp + tn, len(labels)),
        sensitivity=sensitivity,
        specificity=specificity,
        balanced_accuracy=(sensitivity + specificity) / 2,
        ece=expected_calibration_error(probabilities, labels),
        threshold=threshold,
        confusion=((tn, fp), (fn, tp)),
    )


def prevalence_threshold(labels: NDArray[Any], prevalence: float) -> float:
    """The accuracy-optimal threshold on probabilities calibrated on ``labels`` (whose positive
    share is the validation prevalence) for use where the positive share is ``prevalence``:
    Bayes' rule after re-weighting the odds by the ratio of the two priors."""
    val = float(np.clip(np.mean(labels), 1e-3, 1 - 1e-3))
    ratio = (prevalence / (1 - prevalence)) / (val / (1 - val))
    return float(1.0 / (1.0 + ratio))


def choose_threshold(
    probabilities: F64,
    labels: NDArray[Any],
    rule: str,
    fixed: float = 0.5,
    prevalence: float = 0.5,
) -> float:
    """The decision threshold by ``rule``: ``prevalence``, ``youden``, ``accuracy`` or ``fixed``.

    Among ties the threshold in the middle of the best plateau is taken (not its edge), so a small
    shift of the score distribution does not flip many decisions at once.
    """
    if rule == "fixed" or len(np.unique(labels)) < 2:
        return fixed
    if rule == "prevalence":
        return prevalence_threshold(labels, prevalence)
    candidates = np.unique(np.concatenate([probabilities, [0.0, 1.0]]))
    mids = (candidates[:-1] + candidates[1:]) / 2
    positives = labels == 1
    scores = []
    for t in mids:
        predicted = probabilities >= t
        sens = (predicted & positives).sum() / max(positives.sum(), 1)
        spec = (~predicted & ~positives).sum() / max((~positives).sum(), 1)
        scores.append(sens + spec if rule == "youden" else (predicted == positives).mean())
    values = np.asarray(scores)
    best = np.flatnonzero(values >= values.max() - 1e-12)
    return float(np.clip(mids[best[len(best) // 2]], 1e-4, 1 - 1e-4))


def _nll(logits: F64, labels: NDArray[Any], temperature: float) -> float:
    scaled = logits / temperature
    return float(np.mean(np.logaddexp(0.0, scaled) - labels * scaled))


def fit_temperature(logits: F64, labels: NDArray[Any]) -> float:
    """The temperature minimising the validation log-loss (golden-section search on 0.05..20)."""
    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if _nll(logits, labels, float(np.exp(a))) < _nll(logits, labels, float(np.exp(b))):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def roc_points(probabilities: F64, labels: NDArray[Any]) -> tuple[F64, F64]:
    """False- and true-positive rates of the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, probabilities)
    return np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
