"""Train the guard classifiers from the shared datasets and write versioned artefacts.

``python -m genai_factory.safety.training --datasets ../shared/datasets --out DIR`` (or
``scripts/train_guards.py``) trains:

* ``injection``: deepset prompt injections (train split) + jailbreak prompts (80 % of the shared
  train split, seed 0), measured on deepset ``val`` and the other 20 % of the jailbreak prompts,
  and, when given, on a set of unseen attack styles that is never trained on;
* ``toxicity``: Davidson et al. tweets, toxic = hate or offensive, 80/20 split (seed 0);
* ``pii_names``: the name/location tagger on the project's synthetic sentences.

Each artefact's manifest records its version, the SHA-256 of the data, the metrics on the
held-out part, the training time and the library versions. By default the saved model is exactly
the measured one (``--final-fit train``); ``--final-fit all`` refits on the held-out parts too.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from genai_factory.safety.evaluation import evaluate_binary
from genai_factory.safety.injection import InjectionGuard
from genai_factory.safety.normalize import canonical
from genai_factory.safety.textclf import HashedLinearModel, HashingConfig, fit_hashed_linear

Rows = list[tuple[str, bool]]
INJECTION_CONFIG = HashingConfig(char_ngrams=(1, 4), word_ngrams=(1, 2))
INJECTION_C, INJECTION_THRESHOLD = 100.0, 0.5
#: How many SQuAD questions serve as benign negatives (see :func:`benign_negatives`).
BENIGN_QUESTIONS = 3000
TOXICITY_CONFIG = INJECTION_CONFIG  # same features: a text is hashed once for both guards
TOXICITY_C, TOXICITY_THRESHOLD = 10.0, 0.4


def read_labelled_csv(path: Path, text_col: str, label_col: str, positives: Sequence[str]) -> Rows:
    """``(text, is_positive)`` rows of a CSV file."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for column in (text_col, label_col):
            if column not in (reader.fieldnames or ()):
                raise KeyError(column)
        return [
            (row[text_col], row[label_col].strip() in positives)
            for row in reader
            if row.get(text_col)
        ]


def data_hash(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def split(rows: Rows, share: float = 0.2, seed: int = 0) -> tuple[Rows, Rows]:
    """A stratified, reproducible split into (train, held-out), duplicates removed first."""
    unique = list(dict.fromkeys(rows))
    rng = random.Random(seed)
    train: Rows = []
    held: Rows = []
    for label in (False, True):
        part = [r for r in unique if r[1] == label]
        rng.shuffle(part)
        cut = round(len(part) * share)
        held += part[:cut]
        train += part[cut:]
    return train, held


def _versions() -> dict[str, str]:
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__}


def _code_hash() -> str:
    """SHA-256 of the modules that turn text into features (a change there is a new model)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("normalize.py", "textclf.py", "pii_names.py", "ner_data.py"):
        digest.update((package / name).read_bytes())
    return digest.hexdigest()


def _manifest(name: str, digest: str, **extra: Any) -> dict[str, Any]:
    """The manifest; the version hashes the data and every training parameter (not the metrics)."""
    now = datetime.now(UTC)
    parameters = {k: v for k, v in extra.items() if k not in ("metrics", "training_seconds")}
    parameters["code"] = _code_hash()
    fingerprint = hashlib.sha256(
        (digest + json.dumps(parameters, sort_keys=True, default=str)).encode()
    ).hexdigest()
    return {
        "name": name,
        "version": f"{name}-{now:%Y%m%d}-{fingerprint[:8]}",
        "trained_at": now.isoformat(timespec="seconds"),
        "data_sha256": digest,
        "code_sha256": parameters["code"],
        "libraries": _versions(),
        **extra,
    }


def _fit(
    rows: Rows, config: HashingConfig, c: float, threshold: float, *, balanced: bool = True
) -> HashedLinearModel:
    return fit_hashed_linear(
        [canonical(t) for t, _ in rows],
        [int(y) for _, y in rows],
        config=config,
        c=c,
        threshold=threshold,
        balanced=balanced,
    )


def benign_negatives(datasets: Path) -> tuple[Rows, list[Path]]:
    """Benign questions and paragraphs (SQuAD 2.0: shared data, so training is reproducible).

    Questions talk about systems, rules and instructions without attacking anything (hard
    negatives); paragraphs are documents, which retrieved chunks are (the context surface); both
    are clean prose, not tweets, for the toxicity classifier.
    """
    questions_file = datasets / "squad_v2" / "qa.jsonl"
    if not questions_file.is_file():
        return [], []
    with questions_file.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    questions = list(dict.fromkeys(r["question"] for r in records))
    paragraphs = list(dict.fromkeys(r["context"] for r in records))
    random.Random(0).shuffle(questions)
    texts = questions[:BENIGN_QUESTIONS] + paragraphs
    return [(t, False) for t in texts], [questions_file]


def as_saved(model: HashedLinearModel) -> HashedLinearModel:
    """``model`` after a save/load round trip (weights stored as float16)."""
    with tempfile.TemporaryDirectory() as directory:
        return HashedLinearModel.load(model.save(Path(directory), "model"))


def _measure(predict: Callable[[str], bool], rows: Rows) -> dict[str, Any]:
    return evaluate_binary(predict, rows).as_dict()


def train_injection(
    datasets: Path, out: Path, *, unseen: Path | None = None, final_fit: str = "train"
) -> dict[str, Any]:
    """Train, measure and save the injection/jailbreak classifier; return its manifest."""
    files = [
        datasets / "prompt_injection" / "train.csv",
        datasets / "prompt_injection" / "val.csv",
        datasets / "jailbreak" / "train.csv",
    ]
    deepset_train = read_labelled_csv(files[0], "text", "label", ["1"])
    deepset_val = read_labelled_csv(files[1], "text", "label", ["1"])
    jailbreak_train, jailbreak_dev = split(
        read_labelled_csv(files[2], "prompt", "type", ["jailbreak"])
    )
    negatives, negative_files = benign_negatives(datasets)
    files += negative_files
    started = time.perf_counter()
    model = _fit(
        deepset_train + jailbreak_train + negatives,
        INJECTION_CONFIG,
        INJECTION_C,
        INJECTION_THRESHOLD,
        balanced=False,
    )
    seconds = time.perf_counter() - started
    model = as_saved(model)  # measure the float16 weights that ship, not the float32 ones
    guard = InjectionGuard(model)
    metrics = {
        "deepset_val": _measure(lambda t: guard.score(t)[0] >= guard.threshold, deepset_val),
        "jailbreak_dev": _measure(lambda t: guard.score(t)[0] >= guard.threshold, jailbreak_dev),
    }
    if unseen is not None:
        rows = read_labelled_csv(unseen, "text", "label", ["1"])
        metrics["unseen_styles"] = _measure(lambda t: guard.score(t)[0] >= guard.threshold, rows)
    if final_fit == "all":
        model = _fit(
            deepset_train + deepset_val + jailbreak_train + jailbreak_dev + negatives,
            INJECTION_CONFIG,
            INJECTION_C,
            INJECTION_THRESHOLD,
            balanced=False,
        )
    model.manifest = _manifest(
        "injection",
        data_hash(files),
        metrics=metrics,
        training_seconds=round(seconds, 2),
        final_fit=final_fit,
        c=INJECTION_C,
        class_weight="none",
        features=repr(INJECTION_CONFIG),
        benign_negatives=len(negatives),
        note="metrics: fit on the training parts, measured on the held-out parts "
        "(rules + classifier, as the guard runs)",
    )
    model.save(out, "injection")
    return model.manifest


def train_toxicity(datasets: Path, out: Path, *, final_fit: str = "train") -> dict[str, Any]:
    """Train, measure and save the toxicity classifier; return its manifest."""
    path = datasets / "toxicity" / "dev.csv"
    train, held = split(read_labelled_csv(path, "tweet", "class", ["0", "1"]))
    # Tweets are not assistant answers: clean questions and documentation lines teach the model
    # that neutral prose is clean (without them, short neutral answers score near the prior).
    negatives, negative_files = benign_negatives(datasets)
    started = time.perf_counter()
    model = _fit(train + negatives, TOXICITY_CONFIG, TOXICITY_C, TOXICITY_THRESHOLD)
    seconds = time.perf_counter() - started
    model = as_saved(model)  # measure the float16 weights that ship, not the float32 ones
    from genai_factory.safety.toxicity import ToxicityGuard

    guard = ToxicityGuard(model)
    metrics = {"toxicity_holdout": _measure(lambda t: guard.score(t) >= guard.threshold, held)}
    if final_fit == "all":
        model = _fit(train + held + negatives, TOXICITY_CONFIG, TOXICITY_C, TOXICITY_THRESHOLD)
    model.manifest = _manifest(
        "toxicity",
        data_hash([path, *negative_files]),
        metrics=metrics,
        benign_negatives=len(negatives),
        class_weight="balanced",
        features=repr(TOXICITY_CONFIG),
        training_seconds=round(seconds, 2),
        final_fit=final_fit,
        c=TOXICITY_C,
        positives="class 0 (hate) or 1 (offensive)",
    )
    model.save(out, "toxicity")
    return model.manifest


def train_names(out: Path, *, sentences: int = 40_000, seed: int = 0) -> dict[str, Any]:
    """Train and save the name/location tagger on synthetic sentences; return its manifest."""
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.linear_model import SGDClassifier

    from genai_factory.config import bundled_docs_dir
    from genai_factory.safety.ner_data import synthetic_sentences
    from genai_factory.safety.pii_names import (
        LABELS,
        N_FEATURES,
        NameTagger,
        features_for_training,
        load_gazetteers,
        save_tagger,
    )

    started = time.perf_counter()
    gazetteers = load_gazetteers()
    data = list(synthetic_sentences(sentences, seed=seed, docs_dir=bundled_docs_dir()))
    rows, labels = features_for_training(data, gazetteers)
    hasher = FeatureHasher(n_features=N_FEATURES, input_type="string", alternate_sign=False)
    classifier = SGDClassifier(loss="log_loss", alpha=1e-6, max_iter=30, tol=None, random_state=0)
    classifier.fit(hasher.transform(rows), np.asarray(labels))
    weights = classifier.coef_.T.astype(np.float32).copy()
    weights[np.abs(weights) < 0.02] = 0.0
    tagger = NameTagger(weights, classifier.intercept_.astype(np.float32), gazetteers)
    digest = hashlib.sha256(json.dumps(data).encode()).hexdigest()  # all sentences, docs included
    manifest = _manifest(
        "pii_names",
        digest,
        sentences=sentences,
        seed=seed,
        labels=list(LABELS),
        training_seconds=round(time.perf_counter() - started, 2),
        data="synthetic sentences (genai_factory.safety.ner_data), Faker values, our templates",
    )
    save_tagger(tagger, out, "pii_names", manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the guard classifiers.")
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path(".genai/safety"))
    parser.add_argument("--guard", choices=["injection", "toxicity", "names", "all"], default="all")
    parser.add_argument("--unseen", type=Path, default=None, help="unseen-styles CSV to measure")
    parser.add_argument(
        "--final-fit",
        choices=["all", "train"],
        default="train",
        help="train: ship exactly the measured model; all: refit on train + held-out parts",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.guard in ("injection", "all"):
        results["injection"] = train_injection(
            args.datasets, args.out, unseen=args.unseen, final_fit=args.final_fit
        )
    if args.guard in ("toxicity", "all"):
        results["toxicity"] = train_toxicity(args.datasets, args.out, final_fit=args.final_fit)
    if args.guard in ("names", "all"):
        results["pii_names"] = train_names(args.out)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
