"""The safety steps of one assistant request, in the order the assistant takes them.

``SafetyGate.start(query, mode)`` runs the input guards before routing and returns a
:class:`RequestSafety`, which then screens the retrieved chunks (indirect injection: flagged ones
are dropped and reported), checks the answer (or guards its stream) and holds the
:class:`~genai_factory.safety.pipeline.SafetyReport` returned with the answer. Without a pipeline
every step passes the text through unchanged, so the assistant needs no ``if``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from genai_factory.messages import ChatDelta, ScoredChunk
from genai_factory.safety.guard import Verdict
from genai_factory.safety.pipeline import SafetyPipeline, SafetyReport, merge_verdicts
from genai_factory.safety.redaction import RedactionVault

#: The policy that input guards use for each requested mode (before the route is known).
INPUT_ROUTE = {"auto": "default", "chat": "chat", "rag": "rag", "agent": "agent"}


@dataclass
class RequestSafety:
    """The safety state of one request: the (possibly redacted) query and the report."""

    pipeline: SafetyPipeline | None
    system_prompt: str
    query: str
    vault: RedactionVault | None = None
    report: SafetyReport = field(default_factory=SafetyReport)
    #: Whether the caller is authorised to see the values behind reversible placeholders.
    reveal: bool = False

    def screen(self, hits: Sequence[ScoredChunk], route: str) -> list[ScoredChunk]:
        """The retrieved chunks the context guards let through (dropped ones are reported)."""
        if self.pipeline is None or not hits:
            return list(hits)
        kept, dropped = self.pipeline.screen_context(
            [(hit.chunk.id, hit.chunk.text) for hit in hits], route=route
        )
        for entry, position in zip(dropped, _dropped_positions(len(hits), kept), strict=True):
            entry["document_id"] = hits[position].chunk.document_id
        self.report.dropped_sources += dropped
        return [hits[i] for i in kept]

    def answer(self, text: str, route: str, hits: Sequence[ScoredChunk] = ()) -> str:
        """The answer after the route's output guards (raises ``SafetyViolation`` on a block)."""
        if self.pipeline is None:
            return text
        checked = self.pipeline.check_output(
            text,
            route=route,
            sources=[hit.chunk.text for hit in hits],
            system_prompt=self.system_prompt,
            vault=self.vault,
        )
        self.report.output += checked.summaries()
        return checked.text

    def stream(
        self, deltas: AsyncIterator[ChatDelta], route: str, hits: Sequence[ScoredChunk] = ()
    ) -> AsyncIterator[ChatDelta]:
        """``deltas`` released only after the output guards checked them (hold-back buffer)."""
        if self.pipeline is None:
            return deltas
        verdicts: list[Verdict] = []
        guarded = self.pipeline.guard_stream(
            deltas,
            route=route,
            sources=[hit.chunk.text for hit in hits],
            system_prompt=self.system_prompt,
            vault=self.vault,
            verdicts=verdicts,
        )
        return self._reported(guarded, verdicts)

    async def _reported(
        self, guarded: AsyncIterator[ChatDelta], verdicts: list[Verdict]
    ) -> AsyncIterator[ChatDelta]:
        """``guarded``, adding the output verdicts to the report once the stream is over (also
        when it ends early: what was checked until then is reported)."""
        try:
            async for delta in guarded:
                yield delta
        finally:
            closer = getattr(guarded, "aclose", None)
            if closer is not None:
                await closer()
            self.report.output += merge_verdicts(verdicts)

    def restore(self, text: str) -> str:
        """Placeholders mapped back to the original values (only for authorised callers)."""
        return self.vault.restore(text) if self.vault is not None else text

    def shown(self, text: str) -> str:
        """``text`` as the caller may see it: placeholders restored when ``reveal`` is set (the
        model, the session history and the logs keep the redacted text)."""
        if not self.reveal or self.vault is None:
            return text
        restored = self.vault.restore(text)
        if restored != text:
            self.report.restored = True
        return restored

    def summary(self) -> SafetyReport | None:
        report = self.report
        if self.pipeline is None:
            return None
        return report


def _dropped_positions(total: int, kept: Sequence[int]) -> list[int]:
    kept_set = set(kept)
    return [i for i in range(total) if i not in kept_set]


class SafetyGate:
    """Starts the safety steps of each request (see the module docstring)."""

    def __init__(self, pipeline: SafetyPipeline | None, system_prompt: str) -> None:
        self.pipeline = pipeline
        self.system_prompt = system_prompt

    def start(self, query: str, mode: str = "auto", *, reveal: bool = False) -> RequestSafety:
        """Run the input guards of ``mode``'s policy (raises ``SafetyViolation`` on a block).

        ``reveal``: the caller is authorised to get reversible placeholders mapped back in the
        answer (only has an effect with reversible redaction on).
        """
        if self.pipeline is None:
            return RequestSafety(None, self.system_prompt, query)
        vault = self.pipeline.new_vault()
        checked = self.pipeline.check_input(query, route=INPUT_ROUTE.get(mode, mode), vault=vault)
        request = RequestSafety(
            self.pipeline, self.system_prompt, checked.text, vault, reveal=reveal
        )
        request.report.input = checked.summaries()
        return request
