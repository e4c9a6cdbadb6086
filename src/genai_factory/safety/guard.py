"""The ``Guard`` interface: inspect one text in its context and return a verdict.

Contract for implementers:

* ``check(text, context)`` is pure CPU work without I/O and returns within a few milliseconds for a
  2,000-character text (measured by ``bench/guards.py``); it never raises for unusual input (empty
  text, any script, any length) and never mutates the context.
* The verdict's ``action`` is the guard's decision under its configured action: ``allow`` (maybe
  ``flagged`` for a warning), ``redact`` with the new ``text`` (same meaning, sensitive spans
  replaced), or ``block`` with a stable ``reason`` code (``prompt_injection``, ``pii``, ``toxicity``,
  ``ungrounded``, ``system_prompt_leak``).
* ``findings`` are character spans of ``text`` that made the guard decide (for reports and logs; the
  spans themselves are never logged).
* ``name`` is the registered name the configuration uses.

Guards are composed by :class:`~genai_factory.safety.pipeline.SafetyPipeline`, which runs them in
order and feeds each the text the previous one produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Surface = Literal["input", "context", "output"]
Action = Literal["allow", "redact", "block"]


@dataclass(frozen=True)
class GuardContext:
    """Where a text comes from and what a guard may compare it with.

    Args:
        surface: ``input`` (the user's text), ``context`` (a retrieved chunk or a tool output, the
            indirect-injection surface) or ``output`` (the model's answer).
        route: the route whose policy applies (``chat``, ``rag`` ...).
        sources: texts the answer should be grounded in (retrieved chunks), for output guards.
        system_prompt: the system prompt, so output guards can detect its leakage.
        source_id: the chunk id or tool name of a ``context`` text.
        vault: the request's :class:`~genai_factory.safety.redaction.RedactionVault` when
            redaction is reversible, else ``None``.
    """

    surface: Surface = "input"
    route: str = "default"
    sources: tuple[str, ...] = ()
    system_prompt: str = ""
    source_id: str | None = None
    vault: Any = None


@dataclass(frozen=True)
class Finding:
    """A span of the inspected text that a guard flagged."""

    kind: str
    start: int
    end: int
    score: float = 1.0


@dataclass(frozen=True)
class Verdict:
    """A guard's decision about one text."""

    guard: str
    action: Action = "allow"
    reason: str | None = None
    text: str | None = None
    score: float = 0.0
    flagged: bool = False
    findings: tuple[Finding, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def allow(cls, guard: str, *, score: float = 0.0, **details: Any) -> Verdict:
        return cls(guard=guard, score=score, details=details)

    @classmethod
    def warn(
        cls,
        guard: str,
        reason: str,
        *,
        score: float = 1.0,
        findings: tuple[Finding, ...] = (),
        **details: Any,
    ) -> Verdict:
        return cls(
            guard=guard,
            reason=reason,
            score=score,
            flagged=True,
            findings=findings,
            details=details,
        )

    @classmethod
    def redact(
        cls, guard: str, reason: str, text: str, *, findings: tuple[Finding, ...] = ()
    ) -> Verdict:
        return cls(
            guard=guard,
            action="redact",
            reason=reason,
            text=text,
            score=1.0,
            flagged=True,
            findings=findings,
        )

    @classmethod
    def block(
        cls,
        guard: str,
        reason: str,
        *,
        score: float = 1.0,
        findings: tuple[Finding, ...] = (),
        **details: Any,
    ) -> Verdict:
        return cls(
            guard=guard,
            action="block",
            reason=reason,
            score=score,
            flagged=True,
            findings=findings,
            details=details,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-safe description without the text itself (for responses and logs)."""
        kinds = sorted({f.kind for f in self.findings})
        return {
            "guard": self.guard,
            "action": self.action,
            "reason": self.reason,
            "score": round(self.score, 4),
            "flagged": self.flagged,
            "kinds": kinds,
            **self.details,
        }


@runtime_checkable
class Guard(Protocol):
    """Inspects a text in its context and returns a :class:`Verdict` (see the module contract)."""

    name: str

    def check(self, text: str, context: GuardContext) -> Verdict:
        """Decide about ``text``: allow, redact (with the new text) or block (with a reason)."""
        ...
