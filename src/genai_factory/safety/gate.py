"""The safety steps of one request, and the one rule for which text each guard surface sees.

``SafetyGate.start(mode)`` opens a :class:`RequestSafety` for one request. Every route (the
assistant's chat, RAG and agent routes, ``/v1/chat/completions``, and :class:`GuardedModel`)
screens through it, by one rule:

* text a user supplied goes through the **input** guards before a model sees it: the assistant's
  query, and every ``user`` message of a client-written conversation (a client can put an injection
  in an earlier turn as easily as in the last one). A redaction replaces the text;
* text that reaches the model from elsewhere is **indirect** input and goes through the
  **context** guards: retrieved chunks, tool outputs of the agent
  (:class:`~genai_factory.safety.tools.ScreenedTool`) and ``tool`` messages of a conversation.
  Flagged items are dropped (a tool message's content is withheld) and reported;
* ``system`` messages are the caller's own instructions and ``assistant`` messages earlier model
  output: they pass unchanged;
* the answer goes through the **output** guards, whole or as a stream through the pipeline's
  hold-back buffer.

The :class:`~genai_factory.safety.pipeline.SafetyReport` of the request collects every verdict.
Without a pipeline every step passes the text through unchanged, so callers need no ``if``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from genai_factory.messages import ChatDelta, Message, ScoredChunk
from genai_factory.safety.guard import Verdict
from genai_factory.safety.pipeline import SafetyPipeline, SafetyReport, merge_verdicts
from genai_factory.safety.redaction import RedactionVault

#: The policy that input guards use for each requested mode (before the route is known).
INPUT_ROUTE = {"auto": "default", "chat": "chat", "rag": "rag", "agent": "agent"}
#: What a conversation's ``tool`` message says instead of an output the context guards withheld.
WITHHELD = "[tool output withheld by the safety guards: {reason}]"


@dataclass
class RequestSafety:
    """The safety state of one request: its vault of placeholders and its report."""

    pipeline: SafetyPipeline | None
    system_prompt: str = ""
    #: The policy of the input guards (``INPUT_ROUTE`` of the requested mode).
    input_route: str = "default"
    vault: RedactionVault | None = None
    report: SafetyReport = field(default_factory=SafetyReport)
    #: Whether the caller is authorised to see the values behind reversible placeholders.
    reveal: bool = False

    def screen_query(self, text: str) -> str:
        """``text`` (user-supplied) after the input guards; raises ``SafetyViolation`` on a block."""
        if self.pipeline is None:
            return text
        checked = self.pipeline.check_input(text, route=self.input_route, vault=self.vault)
        self.report.input += checked.summaries()
        return checked.text

    def screen_messages(self, messages: Sequence[Message], route: str) -> list[Message]:
        """A client-written conversation after the guards, by the rule of the module docstring."""
        screened: list[Message] = []
        for message in messages:
            content = message.content
            if message.role == "user" and content:
                content = self.screen_query(content)
            elif message.role == "tool" and content:
                content = self._screen_tool(message, route)
            changed = content != message.content
            screened.append(message.model_copy(update={"content": content}) if changed else message)
        return screened

    def _screen_tool(self, message: Message, route: str) -> str:
        source = message.tool_call_id or message.name or "tool"
        return self.screen_text(source, message.content, route)

    def screen_text(self, source: str, text: str, route: str) -> str:
        """Indirect input (a tool's output, an earlier step's result) after the context guards:
        ``text``, or :data:`WITHHELD` naming the reason when a guard flagged it (reported)."""
        if self.pipeline is None or not text:
            return text
        _, dropped = self.pipeline.screen_context([(source, text)], route=route)
        if not dropped:
            return text
        self.report.dropped_sources += dropped
        return WITHHELD.format(reason=dropped[0]["reason"])

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
        return None if self.pipeline is None else self.report


def _dropped_positions(total: int, kept: Sequence[int]) -> list[int]:
    kept_set = set(kept)
    return [i for i in range(total) if i not in kept_set]


class SafetyGate:
    """Opens the safety state of each request (see the module docstring).

    ``system_prompt`` is what the output guards keep from leaking (the assistant's instructions;
    empty for a client-written conversation, which holds no instructions of ours).
    """

    def __init__(self, pipeline: SafetyPipeline | None, system_prompt: str = "") -> None:
        self.pipeline = pipeline
        self.system_prompt = system_prompt

    def start(
        self, mode: str = "auto", *, reveal: bool = False, system_prompt: str | None = None
    ) -> RequestSafety:
        """The safety state of one request whose input guards use ``mode``'s policy.

        ``reveal``: the caller is authorised to get reversible placeholders mapped back in the
        answer (only has an effect with reversible redaction on).
        """
        prompt = self.system_prompt if system_prompt is None else system_prompt
        if self.pipeline is None:
            return RequestSafety(None, prompt)
        return RequestSafety(
            self.pipeline,
            prompt,
            input_route=INPUT_ROUTE.get(mode, mode),
            vault=self.pipeline.new_vault(),
            reveal=reveal,
        )
