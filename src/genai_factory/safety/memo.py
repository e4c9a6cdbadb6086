"""``TextMemo``: the results of a pure function of a text, kept for the texts seen last.

The guards' detectors are pure functions of the text they read (the same text always gives the
same findings or score), and the same texts come back again and again: a system prompt in every
request of a client, the request text that the input guards read and the interaction log redacts
once more, a frequent question. A memo answers those from a dictionary keyed by the text (its
hash, which Python keeps in the string, then an equality check), so a repeated text costs
microseconds instead of a detector pass.

Only a function whose result depends on nothing but the text may be memoised, and the result
must not be changed by its users (tuples of frozen dataclasses, floats). Entries are bounded in
number and in text length (longer texts are computed every time); the oldest entry leaves first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: How many texts a memo keeps, and the longest text it keeps (in characters).
MAX_ENTRIES = 4096
MAX_CHARS = 4096


class TextMemo(Generic[T]):
    """``compute(text)``, remembered for the last ``max_entries`` texts of at most
    ``max_chars`` characters (see the module docstring)."""

    def __init__(
        self,
        compute: Callable[[str], T],
        *,
        max_entries: int = MAX_ENTRIES,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self.compute = compute
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: dict[str, T] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, text: str) -> T:
        entries = self._entries
        if text in entries:
            self.hits += 1
            return entries[text]
        self.misses += 1
        result = self.compute(text)
        if len(text) <= self.max_chars:
            if len(entries) >= self.max_entries:
                del entries[next(iter(entries))]
            entries[text] = result
        return result

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
