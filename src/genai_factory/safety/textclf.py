"""A fast linear text classifier on hashed character and word n-grams, and its versioned artefact.

Features are stateless (feature hashing), so an artefact is only the hashing configuration, the
weights and a manifest: ``<name>.npz`` (numpy arrays, loaded with ``allow_pickle=False``, so loading
never runs code) and ``<name>.json`` (version, data hash, metrics, configuration). Scoring a
2,000-character text takes a couple of milliseconds, which keeps a guard off the critical path of
a request; a transformer forward pass on the same CPU takes tens of milliseconds or more
(``bench/guards.py``). The features are exactly scikit-learn's ``HashingVectorizer`` features,
computed without its per-call overhead. Fitting one is training code:
:func:`genai_factory.safety_training.fitting.fit_hashed_linear`.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from genai_factory.exceptions import ConfigurationError

FORMAT = "genai-factory/hashed-linear/1"


@dataclass(frozen=True)
class HashingConfig:
    """How texts become features: character n-grams inside word boundaries plus word n-grams."""

    char_ngrams: tuple[int, int] = (1, 4)
    word_ngrams: tuple[int, int] = (1, 2)
    n_features: int = 2**18
    max_chars: int = 4000

    def vectorizers(self) -> tuple[HashingVectorizer, HashingVectorizer]:
        common: dict[str, Any] = {
            "n_features": self.n_features,
            "alternate_sign": False,
            "lowercase": False,
            "norm": None,
            "dtype": np.float32,
        }
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
        words = HashingVectorizer(
            analyzer="word", ngram_range=self.word_ngrams, token_pattern=r"(?u)\b\w+\b", **common
        )
        return chars, words


class _Buckets:
    """n-gram → feature index exactly as scikit-learn's ``FeatureHasher`` computes it (signed
    32-bit MurmurHash3 of the UTF-8 bytes, seed 0, ``abs(h) % n_features``), memoised: most
    n-grams of a text were seen before, and a dictionary look-up is far cheaper than a hash call."""

    def __init__(self, n_features: int, max_entries: int = 1_000_000) -> None:
        self.n_features = n_features
        self.max_entries = max_entries
        self.cache: dict[str, int] = {}

    def _bucket(self, gram: str) -> int:
        h = int(murmurhash3_32(gram, seed=0))
        if h == -(2**31):
            return (2**31 - 1 - (self.n_features - 1)) % self.n_features
        return abs(h) % self.n_features

    def indices(self, grams: Sequence[str]) -> list[int]:
        cache = self.cache
        found = [cache.get(gram, -1) for gram in grams]
        if len(cache) > self.max_entries:
            cache.clear()
        for position, index in enumerate(found):
            if index < 0:
                gram = grams[position]
                found[position] = cache[gram] = self._bucket(gram)
        return found


def char_wb_grams(word: str, min_n: int, max_n: int) -> list[str]:
    """The character n-grams of one word padded with spaces, exactly as scikit-learn's
    ``char_wb`` analyzer makes them (a word shorter than ``n`` counts once, whole)."""
    padded = f" {word} "
    grams: list[str] = []
    for n in range(min_n, max_n + 1):
        if len(padded) <= n:
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class _CharFeatures:
    """Per-word character n-gram features (indices and counts), memoised: words repeat."""

    def __init__(self, config: HashingConfig, buckets: _Buckets, max_words: int = 200_000) -> None:
        self.config = config
        self.buckets = buckets
        self.max_words = max_words
        self.cache: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}

    def of_word(self, word: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        found = self.cache.get(word)
        if found is None:
            counter = Counter(char_wb_grams(word, *self.config.char_ngrams))
            indices = np.asarray(self.buckets.indices(list(counter)), dtype=np.int64)
            found = (indices, np.fromiter(counter.values(), dtype=np.float64, count=len(counter)))
            if len(self.cache) > self.max_words:
                self.cache.clear()
            self.cache[word] = found
        return found

    def of_text(self, text: str) -> tuple[list[NDArray[np.int64]], list[NDArray[np.float64]]]:
        indices, counts = [], []
        for word, repeats in Counter(text.split()).items():
            word_indices, word_counts = self.of_word(word)
            indices.append(word_indices)
            counts.append(word_counts * repeats)
        return indices, counts


@functools.lru_cache(maxsize=4)
def _featurizer(config: HashingConfig) -> tuple[_CharFeatures, Any, _Buckets]:
    _, words = config.vectorizers()
    buckets = _Buckets(config.n_features)
    return _CharFeatures(config, buckets), words.build_analyzer(), buckets


@functools.lru_cache(maxsize=32)
def _text_counts(config: HashingConfig, text: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Sorted feature indices of ``text`` (words offset by ``n_features``) and their counts.

    Cached: the guards of one request read the same texts with the same configuration, so a text
    is featurised once for the injection and the toxicity classifier.
    """
    char_features, word_analyzer, buckets = _featurizer(config)
    clipped = text[: config.max_chars]
    indices, counts = char_features.of_text(clipped)
    word_counter = Counter(word_analyzer(clipped))
    if word_counter:
        grams = list(word_counter)
        indices.append(np.asarray(buckets.indices(grams), dtype=np.int64) + config.n_features)
        counts.append(np.fromiter(word_counter.values(), dtype=np.float64, count=len(grams)))
    if not indices:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    unique, inverse = np.unique(np.concatenate(indices), return_inverse=True)
    summed: NDArray[np.float64] = np.bincount(inverse, weights=np.concatenate(counts)).astype(
        np.float64
    )
    return unique, summed


def _l2(values: NDArray[np.float64]) -> NDArray[np.float64]:
    norm = float(np.sqrt(values @ values))
    return values / norm if norm > 0 else values


def _unseen_scales(model: HashedLinearModel, seen: NDArray[np.bool_]) -> list[float] | None:
    """The (idf, nb ratio) scales the model gives features outside ``seen``, or ``None`` when it
    does not know them (a model whose seen features were not recorded)."""
    if model.seen is None or bool(seen.all()):
        return None
    unseen = int(np.flatnonzero(~seen)[0])
    idf = float(model.idf[unseen]) if model.idf is not None else 1.0
    ratio = float(model.nb_ratio[unseen]) if model.nb_ratio is not None else 0.0
    return [idf, ratio]


def _as_matrix(
    rows: Sequence[tuple[NDArray[np.int64], NDArray[np.float64]]], width: int
) -> sparse.csr_matrix:
    indptr = np.cumsum([0, *(len(indices) for indices, _ in rows)])
    indices = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
    values = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
    return sparse.csr_matrix((values, indices, indptr), shape=(len(rows), width))


@dataclass
class HashedLinearModel:
    """Logistic scores of texts: ``sigmoid(features · weights + bias)``.

    Features: sub-linear term frequency (``1 + log(count)``) times inverse document frequency,
    L2-normalised per text; or, with ``binary``, presence (1) times a per-feature weight (the
    naive-Bayes log-count ratio of :func:`~genai_factory.safety_training.fitting.fit_hashed_linear`'s ``weighting="nb"``), L2-normalised.
    With ``nb_ratio`` and ``nb_weights`` (``weighting="idf+nb"``) the model reads two views of the
    same n-grams at once, TF-IDF of all n-grams and naive-Bayes weighted presence of the word
    n-grams, each L2-normalised, with one weight vector per view learnt jointly: the n-grams are
    hashed once, the second view costs a second dot product.
    ``texts`` should already be normalised the way the training texts were.
    """

    config: HashingConfig
    weights: NDArray[np.float32]
    bias: float
    idf: NDArray[np.float32] | None = None
    threshold: float = 0.5
    manifest: dict[str, Any] = field(default_factory=dict)
    binary: bool = False
    nb_ratio: NDArray[np.float32] | None = None
    nb_weights: NDArray[np.float32] | None = None
    #: Features some training text had (saved with their scales); ``None``: non-zero weights.
    seen: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        self._weights64 = self.weights.astype(np.float64)
        self._nb_weights64 = None if self.nb_weights is None else self.nb_weights.astype(np.float64)

    @property
    def views(self) -> int:
        """How many views of the n-grams the model reads (1, or 2 for ``idf+nb``)."""
        return 1 if self.nb_ratio is None else 2

    def row(self, text: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The non-zero feature indices of ``text`` and their (normalised) values."""
        indices, counts = _text_counts(self.config, text)
        values = np.ones_like(counts) if self.binary else 1.0 + np.log(counts)
        if self.idf is not None:
            values = values * self.idf[indices]
        return indices, _l2(values)

    def nb_row(self, text: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The second view of ``text``: n-gram presence times its naive-Bayes ratio, normalised."""
        if self.nb_ratio is None:
            raise ValueError("this model has a single view")
        indices, _ = _text_counts(self.config, text)
        return indices, _l2(self.nb_ratio[indices].astype(np.float64))

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Features of ``texts`` as a sparse matrix (one row each, ``2 * n_features`` columns per
        view, views side by side)."""
        matrix = _as_matrix([self.row(text) for text in texts], 2 * self.config.n_features)
        if self.nb_ratio is None:
            return matrix
        second = _as_matrix([self.nb_row(text) for text in texts], 2 * self.config.n_features)
        return sparse.hstack([matrix, second], format="csr")

    def scores(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Probability of the positive class for each text."""
        logits = np.zeros(len(texts))
        for position, text in enumerate(texts):
            indices, values = self.row(text)
            logit = values @ self._weights64[indices] + self.bias
            if self._nb_weights64 is not None and self.nb_ratio is not None:
                presence = _l2(self.nb_ratio[indices].astype(np.float64))
                logit += presence @ self._nb_weights64[indices]
            logits[position] = logit
        return 1.0 / (1.0 + np.exp(-logits))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unversioned"))

    def save(self, directory: Path, name: str) -> Path:
        """Write ``name.npz`` and ``name.json`` into ``directory``; return the manifest path."""
        directory.mkdir(parents=True, exist_ok=True)
        # Scales are kept wherever a training text had the n-gram (not only where a weight is
        # non-zero): the norm of a text's features depends on all of them, so the loaded model
        # scores exactly as the trained one did.
        seen = self.seen if self.seen is not None else self.weights != 0
        kept = np.flatnonzero(seen).astype(np.int32)
        arrays: dict[str, Any] = {  # (numpy's stub types a dict of arrays as allow_pickle)
            "indices": kept,
            "values": self.weights[kept].astype(np.float16),
            "idf": (self.idf if self.idf is not None else np.ones_like(self.weights))[kept].astype(
                np.float16
            ),
        }
        if self.nb_ratio is not None and self.nb_weights is not None:
            arrays["nb_values"] = self.nb_weights[kept].astype(np.float16)
            arrays["nb_ratio"] = self.nb_ratio[kept].astype(np.float16)
        np.savez_compressed(directory / f"{name}.npz", **arrays)
        manifest = {
            **self.manifest,
            "views": ["idf", "nb"] if self.views == 2 else ["nb" if self.binary else "idf"],
            # The scales of n-grams no training text had (they count in a text's norm).
            "unseen_scales": _unseen_scales(self, seen),
            "format": FORMAT,
            "bias": self.bias,
            "threshold": self.threshold,
            "binary": self.binary,
            "hashing": {
                "char_ngrams": list(self.config.char_ngrams),
                "word_ngrams": list(self.config.word_ngrams),
                "n_features": self.config.n_features,
                "max_chars": self.config.max_chars,
            },
        }
        path = directory / f"{name}.json"
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, manifest_path: Path) -> HashedLinearModel:
        """Read an artefact written by :meth:`save` (never unpickles anything)."""
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT:
                raise ConfigurationError(f"{manifest_path} is not a {FORMAT} artefact")
            hashing = manifest["hashing"]
            config = HashingConfig(
                char_ngrams=(int(hashing["char_ngrams"][0]), int(hashing["char_ngrams"][1])),
                word_ngrams=(int(hashing["word_ngrams"][0]), int(hashing["word_ngrams"][1])),
                n_features=int(hashing["n_features"]),
                max_chars=int(hashing["max_chars"]),
            )
            with np.load(manifest_path.with_suffix(".npz"), allow_pickle=False) as arrays:
                weights = np.zeros(2 * config.n_features, dtype=np.float32)
                weights[arrays["indices"]] = arrays["values"].astype(np.float32)
                defaults = manifest.get("unseen_scales") or [1.0, 0.0]
                idf = np.full(2 * config.n_features, float(defaults[0]), dtype=np.float32)
                idf[arrays["indices"]] = arrays["idf"].astype(np.float32)
                seen = np.zeros(2 * config.n_features, dtype=bool)
                seen[arrays["indices"]] = True
                nb_ratio = nb_weights = None
                if "nb_ratio" in arrays:
                    nb_weights = np.zeros(2 * config.n_features, dtype=np.float32)
                    nb_weights[arrays["indices"]] = arrays["nb_values"].astype(np.float32)
                    nb_ratio = np.full(2 * config.n_features, float(defaults[1]), np.float32)
                    nb_ratio[arrays["indices"]] = arrays["nb_ratio"].astype(np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigurationError(f"cannot read guard artefact {manifest_path}: {exc}") from exc
        return cls(
            config=config,
            weights=weights,
            bias=float(manifest["bias"]),
            idf=idf,
            threshold=float(manifest["threshold"]),
            manifest=manifest,
            binary=bool(manifest.get("binary", False)),
            nb_ratio=nb_ratio,
            nb_weights=nb_weights,
            seen=seen if "unseen_scales" in manifest else None,
        )
