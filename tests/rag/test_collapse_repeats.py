"""A small model caught in a loop writes the same stretch again and again: it is kept once."""

from __future__ import annotations

import pytest

from genai_factory.rag.prompting import collapse_repeats


def test_a_loop_is_kept_once_and_its_cut_off_copy_dropped() -> None:
    assert collapse_repeats("I don't know a joke: " * 12 + "I don'") == "I don't know a joke."
    assert collapse_repeats("Port 8000 [1]. " * 5) == "Port 8000 [1]."
    # what comes after the loop stays
    assert collapse_repeats("See the table. " + "Row one, row two. " * 3 + "Done.") == (
        "See the table. Row one, row two. Done."
    )


@pytest.mark.parametrize(
    "text",
    [
        "The service listens on port 8000 by default [1].",
        "Retry, retry, retry: the model retries 3 times.",  # short words, not a stretch
        "| a | b |\n|---|---|\n| x | y |\n| z | w |",
        "It is port 8000. It is port 8000.",  # twice is not a loop
    ],
)
def test_ordinary_replies_are_unchanged(text: str) -> None:
    assert collapse_repeats(text) == text
