"""The safety guards of ``POST /v1/chat/completions``: the ``chat`` route's policy on messages.

A completion request is a conversation the client wrote, not one query, so the input guards run on
every ``user`` message (a client can put an injection in an earlier turn as easily as in the last
one); a redaction replaces that message's text before the model sees it. ``system`` messages are
the client's own instructions and ``assistant`` / ``tool`` messages are not user text, so they are
passed unchanged. The output guards run on the answer, or on the stream through the pipeline's
hold-back buffer, exactly as on ``/v1/assistant/generate``. A block raises
:class:`~genai_factory.exceptions.SafetyViolation`, which the service turns into an OpenAI-style
400 (``invalid_request_error``, code ``safety_violation``, with the guard's ``reason``), or into the
last event of a stream already under way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from genai_factory.messages import ChatDelta, Message
from genai_factory.safety.gate import RequestSafety
from genai_factory.safety.pipeline import SafetyPipeline

#: The policy of ``settings.safety.routes`` that chat completions use (``default`` when unset).
ROUTE = "chat"


class ChatSafety:
    """The guards of one completion request (no pipeline: everything passes unchanged)."""

    def __init__(self, pipeline: SafetyPipeline | None) -> None:
        vault = pipeline.new_vault() if pipeline is not None else None
        # No system prompt of ours is in a completion, so there is nothing the leak guard protects.
        self.request = RequestSafety(pipeline, system_prompt="", query="", vault=vault)

    @property
    def pipeline(self) -> SafetyPipeline | None:
        return self.request.pipeline

    def screen_messages(self, messages: Sequence[Message]) -> list[Message]:
        """``messages`` after the input guards (raises ``SafetyViolation`` on a block)."""
        pipeline = self.pipeline
        if pipeline is None:
            return list(messages)
        screened: list[Message] = []
        for message in messages:
            if message.role != "user" or not message.content:
                screened.append(message)
                continue
            checked = pipeline.check_input(message.content, route=ROUTE, vault=self.request.vault)
            self.request.report.input += checked.summaries()
            changed = checked.text != message.content
            screened.append(
                message.model_copy(update={"content": checked.text}) if changed else message
            )
        return screened

    def answer(self, text: str) -> str:
        """The answer after the output guards (raises ``SafetyViolation`` on a block)."""
        return self.request.answer(text, ROUTE)

    def stream(self, deltas: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
        """``deltas`` released only once the output guards have checked their text."""
        return self.request.stream(deltas, ROUTE)
