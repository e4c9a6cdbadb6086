"""The PII guard: structured detectors with checksums plus the name/location tagger.

``PIIDetector`` finds spans; ``PIIGuard`` redacts them (or blocks, or only flags) before text reaches
the model, before the answer reaches the caller, and before anything is logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from genai_factory.safety.guard import Finding, GuardContext, Verdict
from genai_factory.safety.pii_names import NameTagger
from genai_factory.safety.pii_patterns import STRUCTURED_KINDS, find_structured, resolve_overlaps
from genai_factory.safety.redaction import PLACEHOLDER, RedactionVault, redact

NAME_KINDS = ("PERSON", "LOCATION")
ALL_KINDS = (*STRUCTURED_KINDS, *NAME_KINDS)
REASON = "pii"


class PIIDetector:
    """Finds PII spans of the chosen ``kinds``; names and locations need a ``tagger``."""

    def __init__(self, tagger: NameTagger | None = None, kinds: Iterable[str] = ALL_KINDS) -> None:
        self.tagger = tagger
        self.kinds = frozenset(kinds)

    def find(self, text: str) -> list[Finding]:
        found = find_structured(text, self.kinds)
        if self.tagger is not None and self.kinds & set(NAME_KINDS):
            names = [f for f in self.tagger.find(text) if f.kind in self.kinds]
            found = resolve_overlaps(found + names)
        if "<" in text:  # text redacted earlier (input, then output guards): keep placeholders
            taken = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
            found = [f for f in found if not any(f.start < e and f.end > s for s, e in taken)]
        return found


class PIIGuard:
    """Redacts (default), blocks or flags PII.

    A :class:`RedactionVault` in the context makes the redaction reversible (numbered placeholders).
    """

    name = "pii"

    def __init__(
        self,
        detector: PIIDetector,
        *,
        action: Literal["redact", "block", "warn"] = "redact",
    ) -> None:
        self.detector = detector
        self.action = action

    def check(self, text: str, context: GuardContext) -> Verdict:
        findings = tuple(self.detector.find(text))
        if not findings:
            return Verdict.allow(self.name)
        if self.action == "block":
            return Verdict.block(self.name, REASON, findings=findings)
        if self.action == "warn":
            return Verdict.warn(self.name, REASON, findings=findings)
        vault = context.vault if isinstance(context.vault, RedactionVault) else None
        return Verdict.redact(self.name, REASON, redact(text, findings, vault), findings=findings)
