"""ROC curve and confusion matrix of one evaluation, as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from genai_factory.vision.evaluation import Evaluation, roc_points


def evaluation_figure(
    probabilities: NDArray[Any],
    labels: NDArray[Any],
    result: Evaluation,
    names: tuple[str, str],
    path: Path,
) -> Path:
    """Write the ROC curve (left) and the confusion matrix (right) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fpr, tpr = roc_points(probabilities, labels)
    figure, (roc, matrix) = plt.subplots(1, 2, figsize=(9, 4))
    roc.plot(fpr, tpr, label=f"AUC {result.auc:.3f}")
    roc.plot([0, 1], [0, 1], linestyle="--", color="grey")
    roc.scatter(
        [1 - result.specificity],
        [result.sensitivity],
        color="red",
        zorder=3,
        label=f"threshold {result.threshold:.2f}",
    )
    roc.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    roc.legend(loc="lower right")
    matrix.imshow(result.confusion, cmap="Blues")
    for i in range(2):
        for j in range(2):
            matrix.text(j, i, str(result.confusion[i][j]), ha="center", va="center")
    matrix.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title=f"confusion (n={result.n})",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
