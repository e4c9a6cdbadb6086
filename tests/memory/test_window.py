"""The token-aware history window and session ownership rules."""

from __future__ import annotations

import pytest

from genai_factory.exceptions import PermissionDenied
from genai_factory.memory.protocol import (
    SessionInfo,
    check_owner,
    keep_count,
    message_tokens,
    recent_within_budget,
)
from genai_factory.messages import Message


def turns(count: int, words: int = 5) -> list[Message]:
    messages: list[Message] = []
    for i in range(count):
        messages.append(Message.user(" ".join([f"q{i}"] * words)))
        messages.append(Message.assistant(" ".join([f"a{i}"] * words)))
    return messages


def test_window_keeps_the_newest_turns_within_the_message_cap() -> None:
    window = recent_within_budget(turns(5), max_messages=4, max_tokens=10_000)
    assert [m.content.split()[0] for m in window] == ["q3", "a3", "q4", "a4"]


def test_window_stops_at_the_token_budget_and_never_starts_with_an_answer() -> None:
    history = turns(4)
    per_message = message_tokens(history[0])
    # Room for three messages: the newest answer, its question, and one older answer, which is
    # dropped because its question did not fit.
    window = recent_within_budget(history, max_messages=100, max_tokens=3 * per_message)
    assert [m.content.split()[0] for m in window] == ["q3", "a3"]


def test_window_is_a_contiguous_tail() -> None:
    history = [Message.user("short"), Message.assistant("word " * 500), Message.user("last")]
    window = recent_within_budget(history, max_messages=10, max_tokens=50)
    assert [m.content for m in window] == ["last"]


@pytest.mark.parametrize(("max_messages", "max_tokens"), [(0, 100), (4, 0)])
def test_zero_budgets_give_no_history(max_messages: int, max_tokens: int) -> None:
    assert recent_within_budget(turns(2), max_messages=max_messages, max_tokens=max_tokens) == []


def test_keep_count_is_never_zero() -> None:
    assert keep_count(0) == 2
    assert keep_count(8) == 16


def test_owner_rules() -> None:
    owned = SessionInfo("s", owner="key1")
    unowned = SessionInfo("s", owner=None)
    check_owner(owned, "key1")
    check_owner(owned, None)  # auth off: any caller
    check_owner(unowned, None)
    with pytest.raises(PermissionDenied):
        check_owner(owned, "key2")
    with pytest.raises(PermissionDenied):
        check_owner(unowned, "key1")  # made while auth was off: no key may take it over
