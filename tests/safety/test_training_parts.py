"""The pieces training is made of, on tiny data: vocabulary, naive-Bayes weights, thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genai_factory.safety.textclf import HashedLinearModel, HashingConfig
from genai_factory.safety_training.fitting import fit_hashed_linear
from genai_factory.safety_training.ner_data import ordinary_words
from genai_factory.safety_training.training import oof_threshold

SMALL = HashingConfig(n_features=2**12)
TOXIC = ["you are an idiot", "shut up fool", "what an idiot", "idiot fool go away"]
CLEAN = ["have a nice day", "the weather is lovely", "see you on monday", "thanks for the help"]


def test_ordinary_words_are_those_written_mostly_in_lower_case() -> None:
    prose = [
        "The gateway forwards requests. A gateway checks keys.",
        "Our gateway is fast. Maria wrote it. Maria lives in Lyon.",
        "Ask Maria. The answer is in the gateway logs, says maria.",
    ]
    words = ordinary_words(prose, min_count=3, min_lower_share=0.6)
    assert "gateway" in words
    assert "maria" not in words  # 1 of 4 occurrences in lower case
    assert "lyon" not in words  # too rare to judge


def test_naive_bayes_weighting_learns_and_survives_a_round_trip(tmp_path: Path) -> None:
    texts, labels = TOXIC * 4 + CLEAN * 4, [1] * 16 + [0] * 16
    model = fit_hashed_linear(texts, labels, config=SMALL, weighting="nb")
    assert model.binary
    loaded = HashedLinearModel.load(model.save(tmp_path, "tox"))
    assert loaded.binary
    scores = loaded.scores(["such an idiot", "a lovely day"])
    assert scores[0] > 0.5 > scores[1]
    np.testing.assert_allclose(scores, model.scores(["such an idiot", "a lovely day"]), atol=0.02)


def test_presence_weighting_ignores_repetition() -> None:
    model = fit_hashed_linear(
        TOXIC * 4 + CLEAN * 4, [1] * 16 + [0] * 16, config=SMALL, weighting="nb"
    )
    once, thrice = model.scores(["idiot", "idiot idiot idiot"])
    # Only the new word bigram ("idiot idiot", never seen) changes the text's norm a little.
    assert abs(once - thrice) < 1e-3
    tf_model = fit_hashed_linear(TOXIC * 4 + CLEAN * 4, [1] * 16 + [0] * 16, config=SMALL)
    tf_once, tf_thrice = tf_model.scores(["idiot", "idiot idiot idiot"])
    assert abs(tf_once - tf_thrice) > abs(once - thrice)


def test_the_threshold_comes_from_out_of_fold_scores() -> None:
    rows = [(t, True) for t in TOXIC * 3] + [(t, False) for t in CLEAN * 3]
    threshold, by_threshold = oof_threshold(rows, SMALL, 10.0, balanced=True, folds=3)
    assert 0.2 <= threshold <= 0.8
    assert by_threshold[f"{threshold:.2f}"] == max(by_threshold.values())
    assert by_threshold[f"{threshold:.2f}"] == 1.0  # separable by words the folds share
