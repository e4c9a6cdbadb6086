"""``DeltaCollector``: what a streamed answer added up to.

Every consumer of a stream needs the same bookkeeping: the text so far, the last reported usage,
the answering model and the finish reason, and, when the backend never reported usage (a stream
cut short, or a backend without usage in its last chunk), an estimate from the prompt and the
text. The assistant's streams and the OpenAI-compatible route's streams share this one class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from genai_factory.llm.tokens import estimate_prompt_tokens, estimate_tokens
from genai_factory.messages import ChatDelta, ChatResponse, FinishReason, Message, Usage


@dataclass
class DeltaCollector:
    """Collects the deltas of one stream (see the module docstring).

    ``model`` is the name reported when no delta names the answering model.
    """

    model: str = ""
    pieces: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: FinishReason = "stop"
    #: Leading whitespace of the answer is dropped (small models often start with a newline).
    strip_leading: bool = True

    def add(self, delta: ChatDelta) -> str:
        """Keep ``delta``; returns the text to pass on (possibly empty)."""
        self.usage = delta.usage or self.usage
        self.model = delta.model or self.model
        self.finish_reason = delta.finish_reason or self.finish_reason
        text = delta.text
        if self.strip_leading and not self.pieces:
            text = text.lstrip()
        if text:
            self.pieces.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def final_usage(self, messages: Sequence[Message]) -> Usage:
        """The reported usage, else an estimate for ``messages`` and the text (``estimated``)."""
        return self.usage or Usage(
            prompt_tokens=estimate_prompt_tokens(messages),
            completion_tokens=estimate_tokens(self.text),
            estimated=True,
        )

    def response(self, messages: Sequence[Message]) -> ChatResponse:
        """The stream as one response, as ``chat`` would have returned it."""
        return ChatResponse(
            text=self.text,
            usage=self.final_usage(messages),
            finish_reason=self.finish_reason,
            model=self.model,
        )
