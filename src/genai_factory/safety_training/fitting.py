"""Fitting the hashed linear classifier of :mod:`genai_factory.safety.textclf` (training only).

The guards score with :class:`~genai_factory.safety.textclf.HashedLinearModel` and never import
this module; scikit-learn's logistic regression is loaded only here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genai_factory.safety.textclf import HashedLinearModel, HashingConfig

#: How n-gram counts become features (see :func:`fit_hashed_linear`).
WEIGHTINGS = ("idf", "nb", "idf+nb")


def fit_hashed_linear(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    config: HashingConfig | None = None,
    c: float = 30.0,
    threshold: float = 0.5,
    balanced: bool = True,
    weighting: str = "idf",
) -> HashedLinearModel:
    """Train a logistic regression on hashed n-grams of (normalised) ``texts``.

    ``weighting="idf"``: sub-linear term frequencies times inverse document frequencies (learnt
    here), L2-normalised per text. ``weighting="nb"``: n-gram presence times its naive-Bayes
    log-count ratio between the classes (Wang & Manning's NBSVM features, with a logistic
    regression on top), L2-normalised: it weighs n-grams by how much they tell the classes apart
    before the classifier sees them, which helps on short, noisy texts such as tweets.
    ``weighting="idf+nb"``: TF-IDF of all n-grams and NB-weighted presence of the word n-grams side
    by side, one logistic regression over the two (it learns how much to trust each n-gram in each
    weighting).
    """
    from sklearn.linear_model import LogisticRegression

    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    chosen = config or HashingConfig()
    binary = weighting == "nb"
    width = 2 * chosen.n_features
    untrained = HashedLinearModel(chosen, np.zeros(width, np.float32), 0.0, binary=binary)
    counts = untrained.features(texts)
    y = np.asarray(labels)
    document_frequency = np.bincount(counts.indices, minlength=width)
    idf = (np.log((1 + len(texts)) / (1 + document_frequency)) + 1).astype(np.float32)
    if weighting in ("nb", "idf+nb"):
        present = counts.copy()
        present.data[:] = 1.0
        p = 1.0 + np.asarray(present[y == 1].sum(axis=0)).ravel()
        q = 1.0 + np.asarray(present[y != 1].sum(axis=0)).ravel()
        ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    if weighting == "nb":
        idf = ratio
    untrained.idf = idf
    if weighting == "idf+nb":
        # The second view reads word n-grams only, and only those some training text had: on
        # character n-grams the ratios also learn punctuation and markup (JSON, YAML, code in
        # jailbreak prompts), and benign technical text then looks like an attack.
        ratio = ratio.copy()
        ratio[: chosen.n_features] = 0.0
        ratio[document_frequency == 0] = 0.0
        untrained.nb_ratio = ratio
    features = untrained.features(texts)
    classifier = LogisticRegression(
        C=c, max_iter=5000, class_weight="balanced" if balanced else None
    )
    classifier.fit(features, y)
    coefficients = classifier.coef_[0].astype(np.float32)
    coefficients[np.abs(coefficients) < 1e-3] = 0.0
    return HashedLinearModel(
        chosen,
        coefficients[:width].copy(),
        float(classifier.intercept_[0]),
        idf=idf,
        threshold=threshold,
        binary=binary,
        nb_ratio=ratio if weighting == "idf+nb" else None,
        nb_weights=coefficients[width:].copy() if weighting == "idf+nb" else None,
        seen=document_frequency > 0,
    )
