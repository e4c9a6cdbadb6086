"""The token-aware history window, the summary in it, size limits and session ownership rules."""

from __future__ import annotations

import pytest

from genai_factory.exceptions import PermissionDenied
from genai_factory.memory.protocol import (
    SUMMARY_PREFIX,
    SessionHistory,
    SessionInfo,
    SizeLimits,
    Summary,
    check_owner,
    encode_message,
    fallen_out,
    keep_count,
    message_tokens,
    prompt_history,
    recent_within_budget,
    stored_size,
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


def firsts(messages: list[Message]) -> list[str]:
    return [m.content.split()[0] for m in messages]


def test_prompt_history_is_the_window_without_a_summary() -> None:
    history = SessionHistory(turns(5))
    window = prompt_history(history, max_messages=4, max_tokens=10_000)
    assert firsts(window) == ["q3", "a3", "q4", "a4"]
    assert firsts(fallen_out(history, max_messages=4, max_tokens=10_000)) == [
        "q0", "a0", "q1", "a1", "q2", "a2"
    ]  # fmt: skip
    assert prompt_history(None, max_messages=4, max_tokens=10_000) == []


def test_the_summary_leads_the_prompt_and_its_turns_are_left_out() -> None:
    summary = Summary("the user is Ada", through=4)
    history = SessionHistory(turns(5), summary=summary)
    prompt = prompt_history(history, max_messages=10, max_tokens=10_000)
    assert prompt[0] == Message.system(SUMMARY_PREFIX + "the user is Ada")
    assert firsts(prompt[1:]) == ["q2", "a2", "q3", "a3", "q4", "a4"]
    assert fallen_out(history, max_messages=10, max_tokens=10_000) == []


def test_positions_count_from_the_first_message_ever_appended() -> None:
    # Six messages were dropped by the size limits; the summary covers the first eight.
    history = SessionHistory(turns(5)[6:], start=6, summary=Summary("s", through=8))
    assert history.end == 10 and history.covered == 8
    assert firsts(history.uncovered()) == ["q4", "a4"]
    assert firsts(prompt_history(history, max_messages=4, max_tokens=10_000)[1:]) == ["q4", "a4"]


def test_the_summary_counts_against_the_token_budget() -> None:
    summary = Summary("word " * 20, through=2)
    history = SessionHistory(turns(4), summary=summary)
    per_message = message_tokens(turns(1)[0])
    memory_cost = message_tokens(Message.system(SUMMARY_PREFIX + summary.text))
    prompt = prompt_history(history, max_messages=10, max_tokens=memory_cost + 2 * per_message)
    assert prompt[0].role == "system" and firsts(prompt[1:]) == ["q3", "a3"]
    pending = fallen_out(history, max_messages=10, max_tokens=memory_cost + 2 * per_message)
    assert firsts(pending) == ["q1", "a1", "q2", "a2"]
    # A summary larger than the whole budget is left out rather than crowding out every turn.
    tight = prompt_history(history, max_messages=10, max_tokens=2 * per_message)
    assert firsts(tight) == ["q3", "a3"]


@pytest.mark.parametrize(("max_messages", "max_tokens"), [(0, 100), (4, 0)])
def test_no_history_budget_means_no_summary_either(max_messages: int, max_tokens: int) -> None:
    history = SessionHistory(turns(3), summary=Summary("s", through=2))
    assert prompt_history(history, max_messages=max_messages, max_tokens=max_tokens) == []
    assert fallen_out(history, max_messages=max_messages, max_tokens=max_tokens) == []


def test_size_limits_keep_the_newest_that_fit_both() -> None:
    assert SizeLimits(messages=3, bytes=1_000).kept([10, 10, 10, 10, 10]) == 3
    assert SizeLimits(messages=10, bytes=25).kept([10, 10, 10, 10, 10]) == 2
    assert SizeLimits(messages=10, bytes=25).kept([10, 30]) == 0  # the newest alone is too big
    assert SizeLimits(messages=10, bytes=1_000).kept([]) == 0


def test_the_stored_size_is_the_utf8_length_of_the_compact_json() -> None:
    encoded = encode_message(Message.user("héllo"))
    assert encoded == '{"role":"user","content":"héllo"}'
    assert stored_size(encoded) == len(encoded) + 1
