"""The embedded llama.cpp backend with the real bundled SmolLM2 model (marked slow)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from genai_factory.exceptions import ConfigurationError, ModelRequestRejected
from genai_factory.llm.llamacpp import LlamaCppModel, bundled_gguf_path
from genai_factory.llm.worker import ModelWorker
from genai_factory.messages import ChatOptions, Message

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def model() -> AsyncIterator[LlamaCppModel]:
    llama = LlamaCppModel(n_ctx=512, n_threads=2)
    await llama.load()
    yield llama
    await llama.aclose()


def test_bundled_weights_are_found() -> None:
    path = bundled_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        LlamaCppModel(tmp_path / "absent.gguf")


@pytest.mark.asyncio(loop_scope="module")
async def test_chat_returns_text_usage_and_model(model: LlamaCppModel) -> None:
    response = await model.chat(
        [Message.user("What is the capital of France? Answer in one word.")],
        ChatOptions(max_tokens=16, temperature=0.0),
    )
    assert "paris" in response.text.lower()
    assert response.model == "smollm2-135m-instruct-q4_1"
    assert response.usage.prompt_tokens > 5
    assert 0 < response.usage.completion_tokens <= 16
    assert not response.usage.estimated


@pytest.mark.asyncio(loop_scope="module")
async def test_max_tokens_gives_finish_reason_length(model: LlamaCppModel) -> None:
    response = await model.chat(
        [Message.user("Write a long story about a dragon.")], ChatOptions(max_tokens=4)
    )
    assert response.finish_reason == "length"
    assert response.usage.completion_tokens == 4


@pytest.mark.asyncio(loop_scope="module")
async def test_stream_matches_chat_and_ends_with_usage(model: LlamaCppModel) -> None:
    messages = [Message.user("Name three colours.")]
    options = ChatOptions(max_tokens=24, temperature=0.0)
    deltas = [d async for d in model.stream(messages, options)]
    text = "".join(d.text for d in deltas)
    # llama.cpp reuses its prompt cache, so greedy text may differ slightly from a chat() call.
    assert "red" in text.lower() or "blue" in text.lower() or "green" in text.lower()
    assert deltas[-1].finish_reason is not None
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens > 0
    assert len(deltas) > 3


@pytest.mark.asyncio(loop_scope="module")
async def test_event_loop_stays_free_while_generating(model: LlamaCppModel) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await model.chat([Message.user("Tell me about the sea.")], ChatOptions(max_tokens=48))
    task.cancel()
    assert ticks > 5


@pytest.mark.asyncio(loop_scope="module")
async def test_computations_never_overlap(model: LlamaCppModel) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    original = model._chat_blocking

    def tracked(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    model._chat_blocking = tracked  # type: ignore[method-assign]
    try:
        await asyncio.gather(
            *(model.chat([Message.user(f"Say {i}.")], ChatOptions(max_tokens=4)) for i in range(4))
        )
    finally:
        del model._chat_blocking
    assert peak == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_abandoned_stream_stops_generating(model: LlamaCppModel) -> None:
    stream = model.stream(
        [Message.user("Count from one to one hundred.")], ChatOptions(max_tokens=200)
    )
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    # The worker is free again: a new call completes at once instead of waiting 200 tokens.
    response = await asyncio.wait_for(
        model.chat([Message.user("Hi")], ChatOptions(max_tokens=2)), timeout=30
    )
    assert response.usage.completion_tokens <= 2


@pytest.mark.asyncio(loop_scope="module")
async def test_prompt_longer_than_context_is_rejected(model: LlamaCppModel) -> None:
    with pytest.raises(ModelRequestRejected, match="context window"):
        await model.chat([Message.user("word " * 2000)])


@pytest.mark.asyncio(loop_scope="module")
async def test_token_count_uses_the_model_tokenizer(model: LlamaCppModel) -> None:
    assert model.count_tokens("hello world") in (2, 3)
    assert model.count_tokens("") == 0


async def test_json_schema_mode_constrains_output() -> None:
    worker = ModelWorker()
    llama = LlamaCppModel(n_ctx=512, n_threads=2, worker=worker)
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["colour"],
    }
    try:
        response = await llama.chat(
            [Message.user("Pick a colour. Reply in JSON.")],
            ChatOptions(max_tokens=32, json_schema=schema),
        )
    finally:
        await llama.aclose()
        worker.close()
    import json

    assert json.loads(response.text)["colour"] in {"red", "green", "blue"}


@pytest.mark.asyncio(loop_scope="module")
async def test_decline_shift_steers_the_first_token_of_answers_from_sources(
    model: LlamaCppModel,
) -> None:
    messages = [Message.user("Say hello to Ada.")]
    greedy = ChatOptions(max_tokens=3, temperature=0.0)
    sourced = greedy.model_copy(update={"answer_from_sources": True})
    try:
        model.decline_shift = 30.0
        assert (await model.chat(messages, sourced)).text.startswith("I")
        # Only answers from sources are shifted.
        plain = (await model.chat(messages, greedy)).text
        model.decline_shift = -30.0
        assert not (await model.chat(messages, sourced)).text.startswith("I")
        model.decline_shift = 0.0
        assert (await model.chat(messages, greedy)).text == plain
    finally:
        model.decline_shift = 0.0


@pytest.mark.asyncio(loop_scope="module")
async def test_probe_reports_the_gap_and_answers_without_declining(model: LlamaCppModel) -> None:
    messages = [Message.user("Say hello to Ada.")]
    options = ChatOptions(max_tokens=3, temperature=0.0)
    probe = await model.probe_decline(messages, options)
    assert probe.text and -100 < probe.gap < 100
    model.decline_shift = -probe.gap + 0.5  # just enough to make the decline token win
    try:
        sourced = options.model_copy(update={"answer_from_sources": True})
        assert (await model.chat(messages, sourced)).text.startswith("I")
        model.decline_shift = -probe.gap - 0.5  # the best other token wins: the probe's reply
        assert (await model.chat(messages, sourced)).text == probe.text
    finally:
        model.decline_shift = 0.0
