"""The fake chat model keeps a bounded record of its calls when a service serves it."""

from __future__ import annotations

import asyncio

from genai_factory.llm.registry import get_model
from genai_factory.messages import Message
from genai_factory.testing.fakes import FakeChatModel

SERVED_CALLS = 1_000


def _ask(model: FakeChatModel, count: int) -> None:
    async def run() -> None:
        for number in range(count):
            await model.chat([Message.user(f"question {number}")])

    asyncio.run(run())


def test_a_fake_built_from_settings_keeps_only_its_latest_calls() -> None:
    # llm.provider=fake is what the soak and crash benchmarks serve for minutes on end.
    model = get_model("fake:fake-priced")
    assert isinstance(model, FakeChatModel)

    _ask(model, SERVED_CALLS)

    kept = len(model.calls)
    assert 0 < kept <= 100  # not one list of messages per call, for ever
    assert model.calls[-1][-1].content == f"question {SERVED_CALLS - 1}"
    assert model.calls[0][-1].content == f"question {SERVED_CALLS - kept}"


def test_a_scripted_fake_keeps_every_call_unless_told_otherwise() -> None:
    kept_all, kept_two = FakeChatModel(), FakeChatModel(keep_calls=2)

    _ask(kept_all, 5)
    _ask(kept_two, 5)

    assert [call[-1].content for call in kept_all.calls] == [f"question {n}" for n in range(5)]
    assert [call[-1].content for call in kept_two.calls] == ["question 3", "question 4"]
