"""Summaries of the turns leaving the prompt window, on every store (in process, SQLite, Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from genai_factory.exceptions import ProviderUnavailable
from genai_factory.llm.base import ChatModel
from genai_factory.memory.protocol import SUMMARY_PREFIX, SessionStore, SizeLimits
from genai_factory.memory.summary import (
    MAX_SUMMARY_CHARS,
    SUMMARY_INSTRUCTIONS,
    SummarizingHistory,
    cleaned_summary,
    next_batch,
    summary_prompt,
)
from genai_factory.messages import ChatOptions, ChatResponse, Message, Usage
from genai_factory.testing.fakes import FakeChatModel

from .conftest import Backend

#: Size limits that drop nothing in these tests.
ROOMY = SizeLimits(100, 100_000)


def summarise(messages: Sequence[Message]) -> str:
    """A summariser that lists the first word of every turn it was given, after the old list."""
    assert messages[0].content == SUMMARY_INSTRUCTIONS
    request = messages[-1].content
    previous = request.split("\n", 1)[0].removeprefix("Summary so far: ")
    turns = request.split("New turns:\n", 1)[1].split("\n\nUpdated summary:", 1)[0]
    words = [line.split(": ", 1)[1].split()[0] for line in turns.splitlines()]
    return " ".join(words if previous == "(none)" else [previous, *words])


def summariser(calls: int = 100) -> FakeChatModel:
    return FakeChatModel([summarise] * calls, name="summariser")


class GatedModel(ChatModel):
    """Summarises like :func:`summarise`, but only once ``gate`` is set."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        self.started.set()
        await self.gate.wait()
        return ChatResponse(text=summarise(messages), usage=Usage(), model=self.name)


async def turn(store: SessionStore, session_id: str, i: int) -> None:
    await store.append(session_id, [Message.user(f"q{i} question"), Message.assistant(f"a{i} ok")])


def firsts(messages: Sequence[Message]) -> list[str]:
    return [m.content.split()[0] for m in messages]


async def test_turns_leaving_the_window_are_summarised_and_lead_later_prompts(
    backend: Backend,
) -> None:
    model = summariser()
    store = SummarizingHistory(backend.store(max_messages=4, max_tokens=10_000), model)
    await store.claim("s", "key1")
    for i in range(2):
        await turn(store, "s", i)
        await store.settle()
    assert model.calls == []  # everything still fits the window
    with capture_logs() as logs:
        for i in range(2, 4):
            await turn(store, "s", i)
            await store.settle()
    written = [entry for entry in logs if entry["event"] == "session_summarized"]
    assert [(e["covers"], e["saved"], e["model"]) for e in written] == [
        (2, True, "summariser"),
        (4, True, "summariser"),
    ]
    assert all(e["prompt_tokens"] > 0 and e["completion_tokens"] > 0 for e in written)
    found = await store.history("s")
    assert found is not None and found.summary is not None
    assert (found.summary.text, found.summary.through) == ("q0 a0 q1 a1", 4)
    prompt = await store.get("s")
    assert prompt[0] == Message.system(SUMMARY_PREFIX + "q0 a0 q1 a1")
    assert firsts(prompt[1:]) == ["q2", "a2", "q3", "a3"]
    assert len(model.calls) == 2  # one per turn that left the window
    await store.aclose()


async def test_turns_appended_while_a_summary_runs_are_folded_in_after_it(
    backend: Backend,
) -> None:
    model = summariser()
    store = SummarizingHistory(backend.store(max_messages=2, max_tokens=10_000, keep=ROOMY), model)
    for i in range(6):
        await turn(store, "s", i)  # no waiting: appends overtake the summaries
    await store.settle()
    found = await store.history("s")
    assert found is not None and found.summary is not None
    assert found.summary.text == "q0 a0 q1 a1 q2 a2 q3 a3 q4 a4"
    assert firsts(await store.get("s"))[1:] == ["q5", "a5"]
    await store.aclose()


async def test_a_failing_model_keeps_the_plain_window_and_is_logged(backend: Backend) -> None:
    down = ProviderUnavailable("the model server is down")
    model = FakeChatModel([down, "   ", *[summarise] * 10])
    store = SummarizingHistory(backend.store(max_messages=2, max_tokens=10_000, keep=ROOMY), model)
    with capture_logs() as logs:
        await turn(store, "s", 0)
        await store.settle()
        await turn(store, "s", 1)  # q0 a0 leave the window: the model fails
        await store.settle()
        assert await store.get("s") == [Message.user("q1 question"), Message.assistant("a1 ok")]
        await turn(store, "s", 2)  # the model writes nothing usable
        await store.settle()
    failures = [entry for entry in logs if entry["event"] == "session_summary_failed"]
    assert len(failures) == 2
    assert "ProviderUnavailable" in failures[0]["error"] and failures[0]["session_id"] == "s"
    found = await store.history("s")
    assert found is not None and found.summary is None
    await turn(store, "s", 3)  # the model is back: everything that left the window is folded in
    await store.settle()
    assert firsts(await store.get("s")) == ["Summary", "q3", "a3"]
    found = await store.history("s")
    assert found is not None and found.summary is not None
    assert found.summary.text == "q0 a0 q1 a1 q2 a2"
    await store.aclose()


async def test_summarising_never_holds_up_an_append_or_a_read(backend: Backend) -> None:
    model = GatedModel()
    store = SummarizingHistory(backend.store(max_messages=2, max_tokens=10_000), model)
    await turn(store, "s", 0)
    await turn(store, "s", 1)
    await asyncio.wait_for(model.started.wait(), 5)  # the summary is waiting for the model
    await asyncio.wait_for(turn(store, "s", 2), 5)
    assert firsts(await asyncio.wait_for(store.get("s"), 5)) == ["q2", "a2"]
    model.gate.set()
    await store.settle()
    assert firsts(await store.get("s")) == ["Summary", "q2", "a2"]
    await store.aclose()


async def test_turns_dropped_by_the_size_limit_were_folded_in_first(backend: Backend) -> None:
    inner = backend.store(max_messages=2, max_tokens=10_000, keep=SizeLimits(4, 100_000))
    store = SummarizingHistory(inner, summariser())
    for i in range(6):
        await turn(store, "s", i)
        await store.settle()
    found = await store.history("s")
    assert found is not None and found.summary is not None
    assert (found.start, found.end) == (8, 12)  # eight messages dropped by the limit ...
    assert found.summary.text == "q0 a0 q1 a1 q2 a2 q3 a3 q4 a4"  # ... all in the summary
    assert found.summary.through == 10
    assert firsts(await store.get("s")) == ["Summary", "q5", "a5"]
    await store.aclose()


async def test_a_long_backlog_is_folded_in_over_several_calls(backend: Backend) -> None:
    model = summariser()
    inner = backend.store(max_messages=2, max_tokens=10_000, keep=ROOMY)
    for i in range(4):
        await turn(inner, "s", i)  # appended before summaries were on: a backlog of six
    store = SummarizingHistory(inner, model, input_tokens=1)
    await turn(store, "s", 4)
    await store.settle()
    assert len(model.calls) == 8  # one message per call
    found = await store.history("s")
    assert found is not None and found.summary is not None
    assert found.summary.text == "q0 a0 q1 a1 q2 a2 q3 a3" and found.summary.through == 8
    await store.aclose()


async def test_a_summary_made_before_a_delete_never_lands(backend: Backend) -> None:
    first = backend.store(max_messages=2, max_tokens=10_000)
    # The in-process store is one process: both "replicas" share it.
    second = first if backend.name == "memory" else backend.store(max_messages=2)
    slow = GatedModel()
    replica_a = SummarizingHistory(first, slow)
    replica_b = SummarizingHistory(second, summariser())
    await replica_a.claim("s", "key1")
    await turn(replica_a, "s", 0)
    await turn(replica_a, "s", 1)
    await asyncio.wait_for(slow.started.wait(), 5)
    assert await replica_b.delete("s")  # deleted through another replica
    await replica_b.claim("s", "key1")
    await turn(replica_b, "s", 7)
    slow.gate.set()
    await replica_a.settle()
    found = await replica_b.history("s")
    assert found is not None and found.summary is None  # the deleted turns did not come back
    assert firsts(found.messages) == ["q7", "a7"]
    await replica_a.aclose()
    await replica_b.aclose()


async def test_a_delete_stops_the_summary_of_its_session(backend: Backend) -> None:
    slow = GatedModel()
    store = SummarizingHistory(backend.store(max_messages=2, max_tokens=10_000), slow)
    await turn(store, "s", 0)
    await turn(store, "s", 1)
    await asyncio.wait_for(slow.started.wait(), 5)
    assert await store.delete("s")
    await store.settle()
    assert await store.history("s") is None
    await store.aclose()


def test_the_prompt_holds_the_previous_summary_and_the_new_turns_cut_short() -> None:
    turns = [Message.user("x" * 5_000), Message.assistant("fine")]
    prompt = summary_prompt("Ada asked about tea.", turns)
    assert prompt[0] == Message.system(SUMMARY_INSTRUCTIONS)
    request = prompt[1].content
    assert request.startswith("Summary so far: Ada asked about tea.\n\nNew turns:\nUser: xxx")
    assert "\nAssistant: fine\n\nUpdated summary:" in request
    assert len(request) < 1_700
    assert summary_prompt(None, turns)[1].content.startswith("Summary so far: (none)")


def test_batches_fit_the_input_budget_but_always_hold_one_message() -> None:
    turns = [Message.user("one two three"), Message.user("four five six"), Message.user("x")]
    assert next_batch(turns, 1) == turns[:1]
    assert next_batch(turns, 7) == turns[:2]  # 4 + 3 estimated tokens
    assert next_batch(turns, 1_000) == turns


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("  Ada likes\n tea.  ", "Ada likes tea."),
        ("Updated summary: Ada likes tea.", "Ada likes tea."),
        (" \n ", ""),
    ],
)
def test_the_summary_text_is_cleaned(written: str, kept: str) -> None:
    assert cleaned_summary(written) == kept


def test_the_summary_text_is_bounded() -> None:
    assert len(cleaned_summary("word " * 5_000)) == MAX_SUMMARY_CHARS


class CountingGate(GatedModel):
    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        self.waiting += 1
        return await super().chat(messages, options)


async def test_summaries_of_many_sessions_take_turns_at_the_model(backend: Backend) -> None:
    model = CountingGate()
    store = SummarizingHistory(backend.store(max_messages=2, max_tokens=10_000), model)
    for session_id in ("a", "b", "c"):
        await turn(store, session_id, 0)
        await turn(store, session_id, 1)
    await asyncio.wait_for(model.started.wait(), 5)
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert model.waiting == 1  # one summary at the model, the others queue here
    model.gate.set()
    await store.settle()
    assert model.waiting == 3
    for session_id in ("a", "b", "c"):
        assert firsts(await store.get(session_id)) == ["Summary", "q1", "a1"]
    await store.aclose()
