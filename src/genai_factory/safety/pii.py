"""The PII guard: structured detectors with checksums plus the name/location tagger.

``PIIDetector`` finds spans; ``PIIGuard`` redacts them (or blocks, or only flags) before text
reaches the model, before the answer reaches the caller, and before anything is logged.

On the model's answer (``surface == "output"``) the guard redacts what is personal data *of this
request*, not every word the detector finds (:class:`OutputPolicy`): structured values (e-mail,
phone, card, IBAN, national ids, secrets) always; a person name only when the retrieved sources
hold it as a person's name (the user's own input is redacted before the model sees it; a word
the source shows to be an acronym, ordinary vocabulary or a code identifier does not count), so
"Paris", a heading ("Drift monitoring") or a product name in an answer stays as written; a
location only when it is a street address (a house number and a named street), never a place name;
an IP address only when it is public (never loopback, private or documentation addresses such as
``127.0.0.1:8000``). Input and logs keep the detector's full recall.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from genai_factory.safety.guard import Finding, GuardContext, Verdict
from genai_factory.safety.memo import TextMemo
from genai_factory.safety.pii_names import _LOCATION_SUFFIXES, NameTagger
from genai_factory.safety.pii_patterns import STRUCTURED_KINDS, find_structured, resolve_overlaps
from genai_factory.safety.redaction import PLACEHOLDER, RedactionVault, redact

NAME_KINDS = ("PERSON", "LOCATION")
ALL_KINDS = (*STRUCTURED_KINDS, *NAME_KINDS)
REASON = "pii"


class PIIDetector:
    """Finds PII spans of the chosen ``kinds``; names and locations need a ``tagger``.

    The spans of a text depend on the text alone, so they are remembered for recent texts
    (:class:`~genai_factory.safety.memo.TextMemo`): the input guard, the output guard and the
    interaction log's redaction often read the same text.
    """

    def __init__(self, tagger: NameTagger | None = None, kinds: Iterable[str] = ALL_KINDS) -> None:
        self.tagger = tagger
        self.kinds = frozenset(kinds)
        self._memo: TextMemo[tuple[Finding, ...]] = TextMemo(self._find)

    def find(self, text: str) -> list[Finding]:
        return list(self._memo(text))

    def _find(self, text: str) -> tuple[Finding, ...]:
        found = find_structured(text, self.kinds)
        if self.tagger is not None and self.kinds & set(NAME_KINDS):
            names = [f for f in self.tagger.find(text) if f.kind in self.kinds]
            found = resolve_overlaps(found + names)
        if "<" in text:  # text redacted earlier (input, then output guards): keep placeholders
            taken = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
            found = [f for f in found if not any(f.start < e and f.end > s for s, e in taken)]
        return tuple(found)


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_HOUSE_NUMBER = re.compile(r"\b\d{1,5}[a-zA-Z]?\b")
_STREET_WORDS = frozenset(w.rstrip(".") for w in _LOCATION_SUFFIXES)
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
#: The end of the text before a sentence's first word: nothing, a line break, or a sentence end
#: (not the dot of an initial or an honorific: ``R. Vizirov``, ``Mrs. Faubert``), then markup.
_OPENING = re.compile(
    r"(?:\A|\n|(?<!\b[A-Z])(?<!\b(?:Mr|Ms|Dr|St))(?<!\bMrs)[.!?:;|]\s)[\s*_#>|\"'(\[-]*\Z"
)
_PREFIXES = ("un", "re", "non", "pre", "dis", "mis")
_INFLECTIONS = ("s", "es", "ed", "ing", "ly")


class OutputPolicy:
    """Which of the detector's findings in an answer are personal data (see the module doc).

    A person name counts when the sources hold it as a person's name. Technical sources write
    many capitalised words the tagger can read as a name, so a word of a source's person name
    does not count when the source itself says it is something else:

    * it is an acronym or a product's spelling (``MLP``, ``OIDC``, ``AVX2``, ``ReLU``,
      ``LiteLLM``): a capital after a lower-case letter at the end, or all capitals that no
      name list knows (``SMITH`` on a form is still a name);
    * it is ordinary vocabulary once a possessive (``Python's``), a common prefix or an
      inflection (``Unset``) is taken off, and no name list knows it;
    * the source writes it in code as an identifier (``Lazy("my_package.my_model")``; a quoted
      value inside code, ``name = 'Grace Hopper'``, is data and still counts);
    * the name is one word opening a sentence or a line, is ordinary vocabulary and no first
      name (``Short of the targets``): a sentence capitalises its first word whatever it is;
    * the name is one possessive word that no name list knows (``Youden's index``).
    """

    def __init__(self, detector: PIIDetector) -> None:
        self.detector = detector
        self._cached: tuple[tuple[str, ...], frozenset[str]] | None = None

    def source_person_words(self, sources: Sequence[str]) -> frozenset[str]:
        """Case-folded words of the person names found in ``sources``, without the words also
        read as a place there (``Paris`` in an article about Paris) and the words a source
        shows to be something else (see the class doc); cached per request."""
        key = tuple(sources)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        people: set[str] = set()
        places: set[str] = set()
        tagger = self.detector.tagger
        if tagger is not None:
            for source in sources:
                named: set[str] = set()
                for finding in tagger.find(source):
                    value = source[finding.start : finding.end]
                    if finding.kind == "PERSON":
                        if not self._opening_word(source, finding) and not self._possessive(value):
                            named |= self._name_words(value)
                    elif finding.kind == "LOCATION":
                        places |= self._name_words(value)
                people |= named - code_identifiers(source)
        found = frozenset(people - places)  # read as a place somewhere: not reliably a person
        self._cached = (key, found)
        return found

    def _name_words(self, value: str) -> set[str]:
        """The words of a name that identify someone: no ordinary words, no acronyms, no place
        names alone."""
        tagger = self.detector.tagger
        words = [b for b in (_bare(w) for w in _WORD.findall(value)) if len(b) > 1]
        if tagger is None:
            return {w.casefold() for w in words if not acronym(w)}
        gazetteers = tagger.gazetteers
        # a name in capitals (``SMITH`` on a form) is still a name when a name list knows it;
        # a capital after a lower-case letter at the end (``ReLU``) never spells a name
        folded = {
            w.casefold()
            for w in words
            if not acronym(w) or (w.isupper() and gazetteers.knows_name(w.casefold()))
        }
        ordinary = {
            w
            for w in folded
            if ordinary_word(w, gazetteers.common_words) and not gazetteers.knows_name(w)
        }
        return folded - ordinary

    def _opening_word(self, source: str, finding: Finding) -> bool:
        """A one-word name opening a sentence or a line, ordinary vocabulary, and no first name."""
        tagger = self.detector.tagger
        words = _WORD.findall(source[finding.start : finding.end])
        if tagger is None or len(words) != 1:
            return False
        folded = _bare(words[0]).casefold()
        gazetteers = tagger.gazetteers
        if folded in gazetteers.first_names or not ordinary_word(folded, gazetteers.common_words):
            return False
        return _OPENING.search(source[max(0, finding.start - 12) : finding.start]) is not None

    def _possessive(self, value: str) -> bool:
        """A one-word possessive name no name list knows (``Youden's index``)."""
        tagger = self.detector.tagger
        words = _WORD.findall(value)
        if tagger is None or len(words) != 1 or not _POSSESSIVE.search(words[0]):
            return False
        return not tagger.gazetteers.knows_name(_bare(words[0]).casefold())

    def is_personal(self, value: str, kind: str, sources: Sequence[str]) -> bool:
        if kind == "PERSON":
            return bool(self._name_words(value) & self.source_person_words(sources))
        if kind == "LOCATION":
            return _street_address(value)
        if kind == "IP_ADDRESS":
            return _public_ip(value)
        return True

    def filter(
        self, text: str, findings: Sequence[Finding], sources: Sequence[str]
    ) -> list[Finding]:
        return [f for f in findings if self.is_personal(text[f.start : f.end], f.kind, sources)]


def _bare(word: str) -> str:
    """A word without its possessive ending (``Python's``: ``Python``)."""
    return _POSSESSIVE.sub("", word)


def acronym(word: str) -> bool:
    """Spelt as an acronym or a product, not a name: all capitals (``MLP``, ``OIDC``) or a
    capital after a lower-case letter at the end (``ReLU``, ``LiteLLM``; not ``McDonald``)."""
    letters = [c for c in word if c.isalpha()]
    if len(letters) < 2:
        return False
    return word.isupper() or (letters[-1].isupper() and any(c.islower() for c in letters))


def ordinary_word(folded: str, common: frozenset[str]) -> bool:
    """A case-folded word of the ordinary vocabulary ``common``, or one made of such a word and a
    common prefix or inflection (``unset``, ``objectives``), its stem three letters or more."""
    if folded in common:
        return True
    for prefix in _PREFIXES:
        stem = folded[len(prefix) :]
        if folded.startswith(prefix) and len(stem) >= 3 and stem in common:
            return True
    for ending in _INFLECTIONS:
        stem = folded[: -len(ending)]
        if folded.endswith(ending) and len(stem) >= 3 and stem in common:
            return True
    return False


def code_identifiers(source: str) -> set[str]:
    """Case-folded words a source writes in code (backticks or a fenced block) outside quoted
    strings: names of functions, classes and settings, not the values the code quotes."""
    code = (_QUOTED.sub(" ", m.group(0)) for m in _CODE.finditer(source))
    return {w.casefold() for c in code for w in _WORD.findall(c)}


def _street_address(value: str) -> bool:
    """A house number, a street word and a capitalised name: ``12 Baker Street``, not a city."""
    words = _WORD.findall(value)
    street = any(w.casefold() in _STREET_WORDS for w in words)
    named = any(w[:1].isupper() and w.casefold() not in _STREET_WORDS for w in words)
    return bool(_HOUSE_NUMBER.search(value)) and street and named


def _public_ip(value: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip("[]")).is_global
    except ValueError:
        return True


class PIIGuard:
    """Redacts (default), blocks or flags PII.

    A :class:`RedactionVault` in the context makes the redaction reversible (numbered placeholders).
    On the answer (``output`` surface) only this request's personal data counts
    (:class:`OutputPolicy`).
    """

    name = "pii"

    def __init__(
        self,
        detector: PIIDetector,
        *,
        action: Literal["redact", "block", "warn"] = "redact",
        terms: frozenset[str] = frozenset(),
    ) -> None:
        self.detector = detector
        self.action = action
        self.output_policy = OutputPolicy(detector)
        #: Words the knowledge base writes in lower case (:func:`knowledge_terms`).
        self.terms = terms

    def check(self, text: str, context: GuardContext) -> Verdict:
        findings = tuple(self.detector.find(text))
        if findings and context.surface == "output":
            findings = tuple(self.output_policy.filter(text, findings, context.sources))
        elif findings and self.terms:
            findings = tuple(f for f in findings if not self._a_term(text, f))
        if not findings:
            return Verdict.allow(self.name)
        if self.action == "block":
            return Verdict.block(self.name, REASON, findings=findings)
        if self.action == "warn":
            return Verdict.warn(self.name, REASON, findings=findings)
        vault = context.vault if isinstance(context.vault, RedactionVault) else None
        return Verdict.redact(self.name, REASON, redact(text, findings, vault), findings=findings)

    def _a_term(self, text: str, finding: Finding) -> bool:
        """Whether a name or place ``finding`` is a term of the knowledge base: every word of
        it is written in lower case there ("Is Redis supported?": ``redis-server``, ``redis://``
        is not counted, nor an e-mail's ``jane.doe``). A person's name is not written so."""
        if finding.kind not in NAME_KINDS:
            return False
        words = _WORD.findall(_POSSESSIVE.sub("", text[finding.start : finding.end]).lower())
        return bool(words) and all(w in self.terms for w in words)


#: Files of a knowledge directory read for its terms, and how much of them at most.
_TERM_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
TERMS_MAX_BYTES = 20_000_000
#: What is not prose: an e-mail address or a URL (its user and host are names, not terms).
_ADDRESS = re.compile(r"\S+@\S+|\b[a-z][a-z+.-]*://\S+", re.IGNORECASE)
_LOWER_WORD = re.compile(r"(?<![\w@])[a-z][a-z]{2,}(?![\w@])")


def knowledge_terms(directories: Sequence[Path]) -> frozenset[str]:
    """The words the text files of ``directories`` write in lower case (in prose, code and
    paths; e-mail addresses and URLs aside), up to :data:`TERMS_MAX_BYTES` of files.

    A product, a tool or a term the knowledge base names in lower case somewhere (``redis``,
    ``grafana``, ``kubernetes``) is not a person's name, while the name tagger reads a
    capitalised one in a question ("Is Redis supported?") as a name. The input PII guard keeps
    such words, so the question retrieval sees still names what it asks about."""
    found: set[str] = set()
    budget = TERMS_MAX_BYTES
    for directory in directories:
        files = [directory] if directory.is_file() else sorted(directory.rglob("*"))
        for path in files:
            if path.suffix.lower() not in _TERM_SUFFIXES or not path.is_file():
                continue
            try:
                size = path.stat().st_size
                if size > budget:
                    return frozenset(found)
                budget -= size
                text = path.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            found.update(_LOWER_WORD.findall(_ADDRESS.sub(" ", text)))
    return frozenset(found)
