"""Redaction: replace sensitive spans with placeholders, optionally reversibly.

Without a vault every span of a kind becomes ``<KIND>``. With a :class:`RedactionVault` (one per
request) the same value always gets the same numbered placeholder (``<PERSON_1>``), and
:meth:`RedactionVault.restore` maps placeholders in the model's answer back for callers authorised
to see them. The vault never leaves the process and is never logged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genai_factory.safety.guard import Finding

_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")
#: Any placeholder this module writes, numbered or not (``<EMAIL_ADDRESS>``, ``<PERSON_2>``).
PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*[A-Z](?:_\d+)?>")


class RedactionVault:
    """Placeholder ↔ original value for one request."""

    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._placeholders:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            token = f"<{kind}_{self._counts[kind]}>"
            self._placeholders[key] = token
            self._values[token] = value
        return self._placeholders[key]

    def restore(self, text: str) -> str:
        """``text`` with every known placeholder replaced by its original value."""
        return _PLACEHOLDER.sub(lambda m: self._values.get(m.group(0), m.group(0)), text)

    def __len__(self) -> int:
        return len(self._values)


def redact(text: str, findings: Sequence[Finding], vault: RedactionVault | None = None) -> str:
    """``text`` with each (non-overlapping) finding replaced by its placeholder."""
    pieces: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position:
            continue
        pieces.append(text[position : finding.start])
        value = text[finding.start : finding.end]
        pieces.append(
            vault.placeholder(finding.kind, value) if vault is not None else f"<{finding.kind}>"
        )
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces)
