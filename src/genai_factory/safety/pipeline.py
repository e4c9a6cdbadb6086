"""``SafetyPipeline``: runs a route's input, context and output guards, in order.

Input guards run before routing (a block raises :class:`SafetyViolation`, a redaction changes what
the model sees); context guards screen retrieved chunks and tool outputs (flagged ones are dropped
and reported); output guards run on the answer, or on a stream through a hold-back buffer. Every
decision is counted in :attr:`SafetyPipeline.stats` and logged without the text itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, Field

from genai_factory.exceptions import GenAIFactoryError, SafetyViolation
from genai_factory.messages import ChatDelta
from genai_factory.observability.context import record_guard_block
from genai_factory.safety.guard import Finding, Guard, GuardContext, Surface, Verdict
from genai_factory.safety.redaction import RedactionVault
from genai_factory.safety.streaming import HoldBackBuffer

log = structlog.get_logger(__name__)

#: Output guards that judge a whole answer; on a stream they run once at the end.
WHOLE_ANSWER_GUARDS = frozenset({"groundedness"})


@dataclass(frozen=True)
class RoutePolicy:
    """The guards of one route, per surface, in the order they run."""

    input: tuple[Guard, ...] = ()
    context: tuple[Guard, ...] = ()
    output: tuple[Guard, ...] = ()


class SafetyReport(BaseModel):
    """What the guards did to one request (returned with the answer; holds no sensitive text)."""

    input: list[dict[str, Any]] = Field(default_factory=list)
    dropped_sources: list[dict[str, Any]] = Field(default_factory=list)
    output: list[dict[str, Any]] = Field(default_factory=list)
    #: Reversible placeholders in the answer were mapped back for an authorised caller.
    restored: bool = False


@dataclass
class Checked:
    """A text after a surface's guards: the text to use and every flagged verdict."""

    text: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def redacted(self) -> bool:
        return any(v.action == "redact" for v in self.verdicts)

    def summaries(self) -> list[dict[str, Any]]:
        return [v.summary() for v in self.verdicts]


VerdictHook = Callable[[Surface, str, Verdict], None]


class SafetyPipeline:
    """Applies per-route guard policies. Routes not configured use the ``default`` policy.

    Args:
        policies: route name → policy; should contain ``default``.
        reversible: give each request a :class:`RedactionVault` so placeholders can be restored.
        on_verdict: called with ``(surface, route, verdict)`` for every flagged verdict
            (metrics and the interaction log plug in here).
        hold_chars: right context a stream keeps unreleased until it is checked.
    """

    def __init__(
        self,
        policies: Mapping[str, RoutePolicy],
        *,
        reversible: bool = False,
        on_verdict: VerdictHook | None = None,
        hold_chars: int = 64,
    ) -> None:
        self.policies = dict(policies)
        self.reversible = reversible
        self.on_verdict = on_verdict
        self.hold_chars = hold_chars
        self.stats: Counter[str] = Counter()

    def policy(self, route: str) -> RoutePolicy:
        return self.policies.get(route) or self.policies.get("default") or RoutePolicy()

    def new_vault(self) -> RedactionVault | None:
        return RedactionVault() if self.reversible else None

    def _record(self, surface: Surface, route: str, verdict: Verdict) -> None:
        key = f"{surface}:{verdict.guard}:{verdict.action}:{verdict.reason}"
        self.stats[key] += 1
        log.info("safety_verdict", surface=surface, route=route, **verdict.summary())
        if verdict.action == "block":
            record_guard_block(verdict.guard, surface)
        if self.on_verdict is not None:
            self.on_verdict(surface, route, verdict)

    def _run(
        self, guards: Sequence[Guard], text: str, context: GuardContext, *, record: bool = True
    ) -> Checked:
        checked = Checked(text)
        for guard in guards:
            verdict = guard.check(checked.text, context)
            if not verdict.flagged and verdict.action == "allow":
                continue
            if record or verdict.action == "block":
                self._record(context.surface, context.route, verdict)
            checked.verdicts.append(verdict)
            if verdict.action == "block":
                raise SafetyViolation(
                    f"the {context.surface} was blocked by the {verdict.guard} guard",
                    reason=verdict.reason or verdict.guard,
                    guard=verdict.guard,
                    stage=context.surface,
                )
            if verdict.action == "redact" and verdict.text is not None:
                checked.text = verdict.text
        return checked

    def check_input(
        self, text: str, *, route: str = "default", vault: RedactionVault | None = None
    ) -> Checked:
        """Run the route's input guards; raises :class:`SafetyViolation` on a block."""
        context = GuardContext(surface="input", route=route, vault=vault)
        return self._run(self.policy(route).input, text, context)

    def screen_context(
        self, items: Sequence[tuple[str, str]], *, route: str = "default"
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """Indirect-injection screening of ``(source_id, text)`` items.

        Returns the indexes of the items to keep and a report of each dropped one.
        """
        guards = self.policy(route).context
        kept: list[int] = []
        dropped: list[dict[str, Any]] = []
        for position, (source_id, text) in enumerate(items):
            context = GuardContext(surface="context", route=route, source_id=source_id)
            try:
                self._run(guards, text, context)
            except SafetyViolation as exc:
                dropped.append({"source_id": source_id, "reason": exc.reason, "guard": exc.guard})
                self.stats["context:dropped"] += 1
                continue
            kept.append(position)
        return kept, dropped

    def _output_context(
        self, route: str, sources: Sequence[str], system_prompt: str, vault: RedactionVault | None
    ) -> GuardContext:
        return GuardContext(
            surface="output",
            route=route,
            sources=tuple(sources),
            system_prompt=system_prompt,
            vault=vault,
        )

    def check_output(
        self,
        text: str,
        *,
        route: str = "default",
        sources: Sequence[str] = (),
        system_prompt: str = "",
        vault: RedactionVault | None = None,
    ) -> Checked:
        """Run the route's output guards on a complete answer."""
        context = self._output_context(route, sources, system_prompt, vault)
        return self._run(self.policy(route).output, text, context)

    async def guard_stream(
        self,
        deltas: AsyncIterator[ChatDelta],
        *,
        route: str = "default",
        sources: Sequence[str] = (),
        system_prompt: str = "",
        vault: RedactionVault | None = None,
        verdicts: list[Verdict] | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Yield the deltas of ``deltas`` with their text checked through a hold-back buffer.

        Whole-answer guards (groundedness) run once the stream has ended and can only report,
        since the text is already with the client. A block raises :class:`SafetyViolation`.
        Every flagged verdict (one per released segment) is appended to ``verdicts`` if given,
        so the caller can report them (see :func:`merge_verdicts`).
        """
        sink: list[Verdict] = verdicts if verdicts is not None else []
        context = self._output_context(route, sources, system_prompt, vault)
        guards = self.policy(route).output
        streamed = tuple(g for g in guards if g.name not in WHOLE_ANSWER_GUARDS)
        at_end = tuple(g for g in guards if g.name in WHOLE_ANSWER_GUARDS)

        def check(window: str, segment: str) -> str:
            self._run(streamed, window, context, record=False)  # blocks across the cut
            checked = self._run(streamed, segment, context)
            sink.extend(checked.verdicts)
            return checked.text

        def spans(text: str) -> list[Finding]:
            return [f for g in streamed for f in g.check(text, context).findings]

        buffer = HoldBackBuffer(check, spans, hold_chars=self.hold_chars)
        full: list[str] = []
        first = True
        try:
            async for delta in deltas:
                full.append(delta.text)
                released = buffer.push(delta.text) if delta.text else ""
                if delta.finish_reason is not None:
                    released += buffer.close()
                # The first delta passes at once (maybe empty), so callers still learn that the
                # model started before they commit to a streamed response.
                if released or delta.finish_reason is not None or first:
                    yield delta.model_copy(update={"text": released})
                first = False
        except GenAIFactoryError:
            tail = buffer.close()  # the model failed: release what is held, checked, then fail
            if tail:
                yield ChatDelta(text=tail)
            raise
        finally:
            closer = getattr(deltas, "aclose", None)
            if closer is not None:
                await closer()
        tail = buffer.close()
        if tail:
            yield ChatDelta(text=tail)
        if at_end:
            sink.extend(self._run(at_end, "".join(full), context).verdicts)


def merge_verdicts(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """Summaries of ``verdicts`` with one entry per guard, action and reason.

    A stream is checked segment by segment, so one guard may flag several segments of one
    answer; the report lists it once, with the union of the kinds found and the highest score.
    """
    merged: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for verdict in verdicts:
        summary = verdict.summary()
        key = (verdict.guard, verdict.action, verdict.reason)
        if key not in merged:
            merged[key] = summary
            continue
        entry = merged[key]
        entry["kinds"] = sorted(set(entry["kinds"]) | set(summary["kinds"]))
        entry["score"] = max(entry["score"], summary["score"])
    return list(merged.values())
