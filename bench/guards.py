"""Latency and quality of the safety guards, each beside an anchor run in the same process.

``latency`` (default): p50/p95 of all input guards together (the ``default`` route: injection,
PII, toxicity) and of all output guards together (PII, toxicity, system-prompt leak, groundedness
against three 600-character sources) on 2,000-character texts, interleaved with the anchor on the
same texts:

* ``tfidf``: a plain character+word TF-IDF logistic regression (scikit-learn pipeline) trained on
  the same shared splits, predicting one text: the cheapest learned detector there is.
* ``minilm`` (``--minilm``): one all-MiniLM-L6-v2 forward pass on the same text (what a
  "linear model on MiniLM embeddings" would cost before its linear layer).

Presidio's ``AnalyzerEngine`` is not run: it needs a spaCy pipeline (``en_core_web_lg`` by
default), and spaCy's authors publish their models on GitHub, not on PyPI (the PyPI copies are
third-party re-uploads this project does not install), so it cannot be installed offline here.

``metrics``: every quality figure, each with the exact command that reproduces it, and the
TF-IDF baseline on the same held-out data beside it. The shipped artefacts were refitted on every
shared row, so the dev figures come from the same recipe fitted without the dev rows (trained into
a temporary directory first); the shipped artefacts are scored on the sets they never saw.

``cv``: out-of-fold F1 of the injection classifier's recipe over the jailbreak and deepset
training prompts (5 folds), beside the previous release's recipe and the TF-IDF baseline: the
comparison the shipped recipe was chosen by (the dev sets are small).

    .venv/bin/python bench/guards.py [latency] [--rounds 200] [--minilm]
    .venv/bin/python bench/guards.py metrics [--datasets ../shared/datasets]
    .venv/bin/python bench/guards.py cv [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genai_factory.config import Settings, bundled_docs_dir
from genai_factory.exceptions import SafetyViolation
from genai_factory.safety.registry import SafetyService
from genai_factory.safety_training.evaluation import evaluate_binary, percentile
from genai_factory.safety_training.training import read_labelled_csv, split

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
UNSEEN = ROOT / "tests" / "safety" / "data" / "unseen_styles.csv"
UNSEEN_PROBE = ROOT / "tests" / "safety" / "data" / "unseen_probe.csv"
#: Benign only: its row's F1 is 0 by definition; the false-positive rate is the figure.
BENIGN_CHAT = ROOT / "tests" / "safety" / "data" / "benign_chat.csv"
BENIGN_SAME_WORDS = ROOT / "tests" / "safety" / "data" / "benign_same_words.csv"
PII_SNIPPETS = (
    " Contact Maria Kowalski at maria.kowalski@example.com or +44 20 7946 0958.",
    " My card is 4111 1111 1111 1111 and my IBAN is DE89 3704 0044 0532 0130 00.",
    " The server 10.20.30.40 rejected api_key=sk-proj-abcdefghijklmnopqrstuvwx12.",
)


def texts_of_2000_chars(count: int, seed: int = 0) -> list[str]:
    """Benign documentation prose and jailbreak-style prompts, with PII, cut to 2,000 chars."""
    rng = random.Random(seed)
    lines = [
        line.strip()
        for path in sorted(bundled_docs_dir().glob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if len(line.strip()) > 40
    ]
    prompts = [
        t
        for t, _ in read_labelled_csv(
            DATASETS / "jailbreak" / "train.csv", "prompt", "type", ["jailbreak"]
        )
        if len(t) > 1500
    ]
    texts = []
    for i in range(count):
        prose = i % 2 == 0 or not prompts
        body = " ".join(rng.sample(lines, 30)) if prose else rng.choice(prompts)
        body = rng.choice(PII_SNIPPETS) + " " + body
        texts.append((body * 2)[:2000])
    return texts


def tfidf_baseline(datasets: Path) -> Any:
    """The anchor: char+word TF-IDF + logistic regression on the shared injection splits."""
    rows = read_labelled_csv(datasets / "prompt_injection" / "train.csv", "text", "label", ["1"])
    jail_train, _ = split(
        read_labelled_csv(datasets / "jailbreak" / "train.csv", "prompt", "type", ["jailbreak"])
    )
    rows += jail_train
    return fit_tfidf_pipeline(rows)


def fit_tfidf_pipeline(rows: Sequence[tuple[str, bool]]) -> Any:
    """The baseline's model: char 2-5 + word 1-2 TF-IDF, logistic regression (C=10)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, C=10),
    )
    model.fit([t for t, _ in rows], [int(y) for _, y in rows])
    return model


#: CPU time of this thread, per call: what a call costs when the cores are not shared (on this
#: machine other jobs often hold both cores, and wall time then measures the queue, not us).
CPU_TIMES: dict[int, float] = {}


def timed(work: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Wall milliseconds one call takes (a guard's block counts as a normal outcome); the call's
    CPU milliseconds are left in ``CPU_TIMES[0]``."""
    cpu = time.thread_time()
    started = time.perf_counter()
    with contextlib.suppress(SafetyViolation):
        work(*args, **kwargs)
    CPU_TIMES[0] = (time.thread_time() - cpu) * 1000
    return (time.perf_counter() - started) * 1000


def run_latency(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        safety = SafetyService(settings)
        safety.load_blocking()
    pipeline = safety.pipeline
    texts = texts_of_2000_chars(args.texts)
    sources = tuple(texts[i][:600] for i in range(3))
    anchor = tfidf_baseline(args.datasets)
    runs: dict[str, list[float]] = {"input guards": [], "output guards": [], "tfidf anchor": []}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    embedder = None
    if args.minilm:
        from sentence_transformers import SentenceTransformer

        from genai_factory.rag.embedding import bundled_minilm_path

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        embedder = SentenceTransformer(bundled_minilm_path(), device="cpu")
        runs["minilm anchor"] = []
        cpu["minilm anchor"] = []
    for text in texts[:3]:  # warm caches (gazetteers, vectorizers, regexes)
        timed(pipeline.check_input, text)
    for round_index in range(args.rounds):
        text = texts[round_index % len(texts)]
        runs["input guards"].append(timed(pipeline.check_input, text))
        cpu["input guards"].append(CPU_TIMES[0])
        runs["output guards"].append(
            timed(
                pipeline.check_output,
                text,
                sources=sources,
                system_prompt=settings.service.system_prompt,
            )
        )
        cpu["output guards"].append(CPU_TIMES[0])
        runs["tfidf anchor"].append(timed(anchor.predict, [text]))
        cpu["tfidf anchor"].append(CPU_TIMES[0])
        if embedder is not None and round_index < args.minilm_rounds:
            runs["minilm anchor"].append(timed(embedder.encode, [text]))
            cpu["minilm anchor"].append(CPU_TIMES[0])
    load = os.getloadavg()[0]
    print(
        f"guards on {len(texts)} texts of 2,000 characters, {args.rounds} rounds, load average {load:.1f} on {os.cpu_count()} cores"
    )
    anchor_p95 = percentile(runs["tfidf anchor"], 95)
    anchor_cpu95 = percentile(cpu["tfidf anchor"], 95)
    print(f"{'':<16} {'wall time':^30} | {'CPU time of the thread':^30}")
    print(
        f"{'run':<16} {'p50 ms':>8} {'p95 ms':>8} {'p95/tfidf':>12} | {'p50 ms':>8} {'p95 ms':>8} {'p95/tfidf':>12}"
    )
    for name, values in runs.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        c50, c95 = percentile(cpu[name], 50), percentile(cpu[name], 95)
        print(
            f"{name:<16} {p50:>8.2f} {p95:>8.2f} {p95 / anchor_p95:>12.2f} | "
            f"{c50:>8.2f} {c95:>8.2f} {c95 / anchor_cpu95:>12.2f}"
        )
    print("target: input guards p95 <= 10 ms; output guards p95 <= 10 ms")


def _command(args: Sequence[str], artefacts: Path | None = None) -> dict[str, Any]:
    """Run ``genai-factory ARGS --json``, with the guard artefacts of ``artefacts`` if given."""
    shown = "genai-factory " + " ".join(args)
    env = dict(os.environ)
    if artefacts is not None:
        env["GENAI_SAFETY__ARTEFACT_DIR"] = str(artefacts)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("genai-factory")), *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    body: dict[str, Any] = json.loads(result.stdout)
    body["command"] = shown
    return body


def _write_csv(rows: Sequence[tuple[str, bool]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((t, int(y)) for t, y in rows)
    return path


def train_measured(datasets: Path, out: Path) -> Path:
    """Fit the injection and toxicity guards the shipped way but without their held-out parts
    (``--final-fit train``) into ``out``: the models the dev figures belong to. The shipped
    artefacts were refitted on every shared row, the dev rows included."""
    from genai_factory.safety_training.training import train_injection, train_toxicity

    train_injection(datasets, out, unseen=UNSEEN, final_fit="train")
    train_toxicity(datasets, out, final_fit="train")
    return out


def run_metrics(args: argparse.Namespace) -> None:
    datasets = args.datasets
    out = Path(tempfile.mkdtemp(prefix="guard-eval-"))
    print("fitting the guards without their held-out rows (about a minute) ...", flush=True)
    measured = train_measured(datasets, out / "measured")
    _, jail_dev = split(
        read_labelled_csv(datasets / "jailbreak" / "train.csv", "prompt", "type", ["jailbreak"])
    )
    _, tox_held = split(
        read_labelled_csv(datasets / "toxicity" / "dev.csv", "tweet", "class", ["0", "1"])
    )
    # (file, guard, whether the shipped artefact was trained on it)
    sets = {
        "deepset val": (datasets / "prompt_injection" / "val.csv", "injection", True),
        "jailbreak dev (20 % of train, seed 0)": (
            _write_csv(jail_dev, out / "jailbreak_dev.csv"),
            "injection",
            True,
        ),
        "unseen styles (tests/safety/data)": (UNSEEN, "injection", False),
        "second unseen probe (tests/safety/data)": (UNSEEN_PROBE, "injection", False),
        "benign chat requests (tests/safety/data)": (BENIGN_CHAT, "injection", False),
        "benign prompts with attack words (tests)": (BENIGN_SAME_WORDS, "injection", False),
        "toxicity hold-out (20 % of dev, seed 0)": (
            _write_csv(tox_held, out / "toxicity_holdout.csv"),
            "toxicity",
            True,
        ),
    }
    anchor = tfidf_baseline(datasets)
    print(
        "measured: fitted without the dev rows; shipped: refitted on all shared rows "
        "(scored only where it never saw the rows)"
    )
    print(
        f"{'set':<42} {'F1':>6} {'P':>6} {'R':>6} {'FPR':>6} | {'shipped F1':>10} {'FPR':>6} "
        f"| {'tfidf F1':>8} {'FPR':>6}"
    )
    commands = []
    for name, (path, guard, shipped_saw_it) in sets.items():
        command = [
            "eval",
            "guard",
            "--guard",
            guard,
            "--dataset",
            str(path),
            "--text-col",
            "text",
            "--label-col",
            "label",
            "--positive",
            "1",
        ]
        body = _command(command, artefacts=measured)
        commands.append(f"GENAI_SAFETY__ARTEFACT_DIR={measured} {body['command']}")
        shipped_text = f"{'(trained)':>10} {'':>6}"
        if not shipped_saw_it:
            shipped = _command(command)
            commands.append(shipped["command"])
            shipped_text = f"{shipped['f1']:>10.4f} {shipped['false_positive_rate']:>6.4f}"
        rows = read_labelled_csv(path, "text", "label", ["1"])
        base = (
            ""
            if guard != "injection"
            else evaluate_binary(lambda t: bool(anchor.predict([t])[0]), rows).as_dict()
        )
        base_text = (
            f"{base['f1']:>8.4f} {base['false_positive_rate']:>6.4f}"
            if base
            else f"{'-':>8} {'-':>6}"
        )
        print(
            f"{name:<42} {body['f1']:>6.4f} {body['precision']:>6.4f} {body['recall']:>6.4f} "
            f"{body['false_positive_rate']:>6.4f} | {shipped_text} | {base_text}",
            flush=True,
        )
    pii = _command(["eval", "pii", "--dataset", str(datasets / "pii" / "dev.json")])
    commands.append(pii["command"])
    print("\nPII (token level, presidio-evaluator mapping)")
    for kind, scores in [*pii["per_entity"].items(), ("OVERALL", pii["overall"])]:
        print(
            f"  {kind:<16} P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}"
        )
    print("\ncommands:")
    for command in commands:
        print("  " + command)


def _f1_at(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> float:
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and y)
    wrong = sum(1 for s, y in zip(scores, labels, strict=True) if (s >= threshold) != bool(y))
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def run_cv(args: argparse.Namespace) -> None:
    """Out-of-fold F1 (5 folds, threshold 0.5) over the jailbreak prompts and, in the same folds'
    runs, over the deepset training prompts; every other training row is always in the training
    part. Compares the shipped injection recipe with the previous release's and the baseline."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from genai_factory.safety.normalize import canonical
    from genai_factory.safety_training.hard_negatives import hard_negatives, technical_texts
    from genai_factory.safety_training.training import (
        HARD_NEGATIVES,
        INJECTION_C,
        INJECTION_CONFIG,
        INJECTION_WEIGHTING,
        TECHNICAL_NEGATIVES,
        _fit,
        benign_negatives,
    )

    datasets = args.datasets
    deepset = read_labelled_csv(datasets / "prompt_injection" / "train.csv", "text", "label", ["1"])
    jailbreak = list(
        dict.fromkeys(
            read_labelled_csv(datasets / "jailbreak" / "train.csv", "prompt", "type", ["jailbreak"])
        )
    )
    squad, _ = benign_negatives(datasets)
    extra = [
        (t, False)
        for t in hard_negatives(HARD_NEGATIVES) + technical_texts(datasets, TECHNICAL_NEGATIVES)
    ]

    def hashed(weighting: str, negatives: list[tuple[str, bool]]) -> Callable[..., Any]:
        def fit(rows: list[tuple[str, bool]]) -> Callable[[list[str]], Any]:
            model = _fit(
                rows + negatives,
                INJECTION_CONFIG,
                INJECTION_C,
                0.5,
                balanced=False,
                weighting=weighting,
            )
            return lambda texts: model.scores([canonical(t) for t in texts])

        return fit

    def baseline(rows: list[tuple[str, bool]]) -> Callable[[list[str]], Any]:
        model = fit_tfidf_pipeline(rows)
        return lambda texts: model.predict_proba(texts)[:, 1]

    recipes = {
        f"shipped ({INJECTION_WEIGHTING}, SQuAD + extra negatives)": hashed(
            INJECTION_WEIGHTING, squad + extra
        ),
        "previous release (idf, SQuAD negatives)": hashed("idf", squad),
        "scikit-learn TF-IDF baseline": baseline,
    }
    j_labels = np.asarray([int(y) for _, y in jailbreak])
    d_labels = np.asarray([int(y) for _, y in deepset])
    folds = 5
    j_folds = StratifiedKFold(folds, shuffle=True, random_state=0).split(j_labels, j_labels)
    d_folds = StratifiedKFold(folds, shuffle=True, random_state=0).split(d_labels, d_labels)
    splits = list(zip(j_folds, d_folds, strict=True))
    print(
        f"{'recipe':<52} {'jailbreak F1':>12} {'deepset F1':>10}   ({folds} folds, threshold 0.5)"
    )
    for name, fit in recipes.items():
        j_scores = np.zeros(len(jailbreak))
        d_scores = np.zeros(len(deepset))
        for (j_train, j_test), (d_train, d_test) in splits:
            score = fit([jailbreak[i] for i in j_train] + [deepset[i] for i in d_train])
            j_scores[j_test] = score([jailbreak[i][0] for i in j_test])
            d_scores[d_test] = score([deepset[i][0] for i in d_test])
        j_f1 = _f1_at(j_scores.tolist(), j_labels.tolist())
        d_f1 = _f1_at(d_scores.tolist(), d_labels.tolist())
        print(f"{name:<52} {j_f1:>12.4f} {d_f1:>10.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=["latency", "metrics", "cv"], default="latency")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--minilm", action="store_true", help="also time a MiniLM forward pass")
    parser.add_argument("--minilm-rounds", type=int, default=20)
    args = parser.parse_args()
    if args.what == "metrics":
        run_metrics(args)
    elif args.what == "cv":
        run_cv(args)
    else:
        run_latency(args)


if __name__ == "__main__":
    main()
