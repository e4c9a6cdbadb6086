"""Output checks against the request's context: groundedness of RAG answers, system-prompt leakage.

Groundedness is sentence-level lexical support: a sentence is supported when enough of its content
words (and their character 4-grams, which forgive inflection) occur in one retrieved source. It
costs well under a millisecond; an NLI model would cost a forward pass per sentence and source.
The policy decides what happens to unsupported sentences: ``warn`` (report them), ``strip`` (remove
them from the answer) or ``block`` (refuse the answer when too many are unsupported).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from genai_factory.safety.guard import Finding, GuardContext, Verdict
from genai_factory.safety.normalize import canonical

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_WORD = re.compile(r"\w+")
_CITATION = re.compile(r"\[\d{1,2}\]")
STOPWORDS = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "a an the and or but if of to in on at by for with from as is are was were be been "
        "being it its this that these those there here you your i we they he she them his her "
        "our their my me us do does did not no yes can could should would will may might must "
        "have has had than then so such also into about over under more most very just only "
        "any all some each which who whom what when where why how according source sources "
        "context answer question"
    ).split()
)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(canonical(text)) if len(w) > 2 and w not in STOPWORDS]


def _grams(words: Sequence[str]) -> set[str]:
    grams: set[str] = set()
    for word in words:
        padded = f" {word} "
        grams.update(padded[i : i + 4] for i in range(max(1, len(padded) - 3)))
    return grams


def sentence_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


SourceIndex = list[tuple[frozenset[str], frozenset[str]]]


def index_sources(sources: Sequence[str]) -> SourceIndex:
    """Each source's content words and their character 4-grams (computed once per answer)."""
    indexed = []
    for source in sources:
        words = frozenset(content_words(source))
        indexed.append((words, frozenset(_grams(list(words)))))
    return indexed


def support(sentence: str, sources: Sequence[str]) -> float:
    """How much of ``sentence`` one source supports: 0 (nothing) to 1 (every content word)."""
    return indexed_support(sentence, index_sources(sources))


def indexed_support(sentence: str, indexed: SourceIndex) -> float:
    """:func:`support` against sources already indexed by :func:`index_sources`."""
    words = content_words(_CITATION.sub("", sentence))
    if not words:
        return 1.0
    sentence_grams = _grams(words)
    best = 0.0
    for source_words, source_grams in indexed:
        word_recall = sum(w in source_words for w in words) / len(words)
        gram_recall = len(sentence_grams & source_grams) / len(sentence_grams)
        best = max(best, (word_recall + gram_recall) / 2)
    return best


class GroundednessGuard:
    """Flags answer sentences that the retrieved sources do not support (RAG answers only)."""

    name = "groundedness"

    def __init__(
        self,
        *,
        action: Literal["warn", "strip", "block"] = "warn",
        min_support: float = 0.5,
        max_unsupported: float = 0.5,
        min_words: int = 3,
    ) -> None:
        self.action = action
        self.min_support = min_support
        self.max_unsupported = max_unsupported
        self.min_words = min_words

    def unsupported(self, text: str, sources: Sequence[str]) -> list[Finding]:
        found = []
        indexed = index_sources(sources)
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            if len(content_words(sentence)) < self.min_words:
                continue
            score = indexed_support(sentence, indexed)
            if score < self.min_support:
                found.append(Finding("UNSUPPORTED", start, end, round(score, 3)))
        return found

    def check(self, text: str, context: GuardContext) -> Verdict:
        if not context.sources:
            return Verdict.allow(self.name)
        findings = tuple(self.unsupported(text, context.sources))
        if not findings:
            return Verdict.allow(self.name)
        checked = [
            s
            for s in sentence_spans(text)
            if len(content_words(text[s[0] : s[1]])) >= self.min_words
        ]
        share = len(findings) / max(1, len(checked))
        if self.action == "block" and share > self.max_unsupported:
            return Verdict.block(self.name, "ungrounded", score=share, findings=findings)
        if self.action == "strip":
            kept = _remove(text, findings).strip()
            if kept:
                return Verdict.redact(self.name, "ungrounded", kept, findings=findings)
            return Verdict.block(self.name, "ungrounded", score=share, findings=findings)
        return Verdict.warn(self.name, "ungrounded", score=share, findings=findings)


def _remove(text: str, findings: Sequence[Finding]) -> str:
    pieces, position = [], 0
    for finding in findings:
        pieces.append(text[position : finding.start])
        position = finding.end
    pieces.append(text[position:])
    return re.sub(r"[ \t]{2,}", " ", "".join(pieces))


class PromptLeakGuard:
    """Blocks answers that repeat a run of ``min_words`` consecutive words of the system prompt."""

    name = "prompt_leak"

    def __init__(self, *, action: Literal["block", "warn"] = "block", min_words: int = 8) -> None:
        self.action = action
        self.min_words = min_words

    def leaked(self, text: str, system_prompt: str) -> bool:
        prompt_words = _WORD.findall(canonical(system_prompt))
        n = min(self.min_words, len(prompt_words))
        if n < 4:
            return False
        prompt_grams = {tuple(prompt_words[i : i + n]) for i in range(len(prompt_words) - n + 1)}
        words = _WORD.findall(canonical(text))
        return any(tuple(words[i : i + n]) in prompt_grams for i in range(len(words) - n + 1))

    def check(self, text: str, context: GuardContext) -> Verdict:
        if not context.system_prompt or not self.leaked(text, context.system_prompt):
            return Verdict.allow(self.name)
        if self.action == "warn":
            return Verdict.warn(self.name, "system_prompt_leak")
        return Verdict.block(self.name, "system_prompt_leak")
