"""Streaming-safe output guarding: a small hold-back buffer between the model and the client.

Text is released only after the output guards have checked it, and only up to a cut that leaves at
least ``hold_chars`` characters of right context unreleased. The cut falls on whitespace (so a token
such as an e-mail address is never split) and never inside a span a guard found (so ``+44 20 7946
0958`` is checked whole). The client therefore never sees a PII or toxic span before it is checked,
at the price of a delay of about ``hold_chars`` characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from genai_factory.safety.guard import Finding

#: ``check(window, segment)`` returns the segment as it may be released (redacted), or raises
#: :class:`~genai_factory.exceptions.SafetyViolation`. ``window`` is the segment with some text
#: released before it, for guards that need context across the cut.
SegmentCheck = Callable[[str, str], str]
SpanFinder = Callable[[str], Sequence[Finding]]


class HoldBackBuffer:
    """Buffers streamed text and releases checked text (see the module docstring)."""

    def __init__(
        self,
        check: SegmentCheck,
        find_spans: SpanFinder,
        *,
        hold_chars: int = 64,
        min_release: int = 24,
        window_chars: int = 200,
    ) -> None:
        self.check = check
        self.find_spans = find_spans
        self.hold_chars = hold_chars
        self.min_release = min_release
        self.window_chars = window_chars
        self._raw = ""
        self._released = 0

    @property
    def pending(self) -> str:
        """Received text not yet released."""
        return self._raw[self._released :]

    def push(self, piece: str) -> str:
        """Add streamed text; return the text that may now be sent (possibly empty)."""
        self._raw += piece
        return self._release(final=False)

    def close(self) -> str:
        """The stream ended: check and return everything still held."""
        return self._release(final=True)

    def _cut(self, pending: str) -> int:
        limit = len(pending) - self.hold_chars
        if limit < self.min_release:
            return 0
        cut = max(pending.rfind(ch, 0, limit + 1) for ch in " \n\t")
        for span in self.find_spans(pending):
            if span.start < cut < span.end:
                cut = min(cut, span.start)
        return cut if cut >= self.min_release else 0

    def _release(self, *, final: bool) -> str:
        pending = self.pending
        cut = len(pending) if final else self._cut(pending)
        if cut <= 0:
            return ""
        segment = pending[:cut]
        window = self._raw[max(0, self._released - self.window_chars) : self._released + cut]
        released = self.check(window, segment)
        self._released += cut
        return released
