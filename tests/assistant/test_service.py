from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from genai_factory.assistant.service import AssistantService
from genai_factory.config import Price
from genai_factory.exceptions import ProviderUnavailable
from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.messages import ChatOptions, ChatResponse, Message
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder


@pytest.fixture
async def index(tmp_path: Path) -> KnowledgeIndex:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fallback.md").write_text(
        "# Fallback\n\nConfigure a fallback model with llm fallbacks, an ordered list.\n"
    )
    (docs / "cooking.md").write_text("# Cooking\n\nBoil pasta in salted water.\n")
    embedder = FakeEmbedder()
    idx = KnowledgeIndex(EmbeddedVectorStore(tmp_path / "i"), embedder)
    await idx.ingest_path(docs)
    return idx


async def test_rag_answer_has_citations_usage_cost_and_trace(index: KnowledgeIndex) -> None:
    model = FakeChatModel(["Use llm fallbacks [1]."], name="priced-model")
    assistant = AssistantService(
        model,
        index,
        system_prompt="sys",
        top_k=2,
        min_score=0.2,
        prices={"priced-model": Price(input_per_million=1_000_000, output_per_million=2_000_000)},
    )
    answer = await assistant.generate("How do I configure a fallback model?")
    assert answer.route == "rag"
    assert answer.answer == "Use llm fallbacks [1]."
    assert answer.citations[0].source == "fallback.md"
    assert answer.citations[0].cited
    assert answer.model == "priced-model"
    usage = answer.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost_usd == pytest.approx(usage.prompt_tokens + 2 * usage.completion_tokens)
    assert len(answer.trace_id) == 32
    assert set(answer.stages_ms) == {"routing", "retrieval", "llm"}
    assert "Configure a fallback model" in model.calls[0][-1].content


async def test_auto_mode_chats_when_nothing_relevant(index: KnowledgeIndex) -> None:
    model = FakeChatModel(["Hello!"])
    assistant = AssistantService(model, index, system_prompt="sys", min_score=0.5)
    answer = await assistant.generate("zzz qqq")
    assert answer.route == "chat"
    assert answer.citations == []
    assert model.calls[0][-1].content == "zzz qqq"


async def test_explicit_modes(index: KnowledgeIndex) -> None:
    assistant = AssistantService(FakeChatModel(), index, system_prompt="sys", min_score=0.99)
    assert (await assistant.generate("fallback", mode="rag")).route == "rag"
    assert (await assistant.generate("fallback model", mode="chat")).citations == []


async def test_sessions_carry_history(index: KnowledgeIndex) -> None:
    model = FakeChatModel(["first", "second"])
    assistant = AssistantService(
        model, index, system_prompt="sys", history=InMemoryHistory(max_messages=4)
    )
    await assistant.generate("my name is Ada", mode="chat", session_id="s1")
    await assistant.generate("what is my name?", mode="chat", session_id="s1")
    second_call = [m.content for m in model.calls[1]]
    assert second_call == ["sys", "my name is Ada", "first", "what is my name?"]
    await assistant.generate("other session", mode="chat", session_id="s2")
    assert [m.content for m in model.calls[2]] == ["sys", "other session"]


async def test_max_tokens_is_passed_and_errors_propagate(index: KnowledgeIndex) -> None:
    model = FakeChatModel(["one two three four five six seven eight nine ten " * 5])
    assistant = AssistantService(model, index, system_prompt="sys")
    answer = await assistant.generate("fallback", max_tokens=3)
    assert answer.finish_reason == "length"
    failing = AssistantService(
        FakeChatModel([ProviderUnavailable("down")]), None, system_prompt="s"
    )
    with pytest.raises(ProviderUnavailable):
        await failing.generate("hi")


async def test_chat_answers_carry_no_citation_marks(index: KnowledgeIndex) -> None:
    assistant = AssistantService(
        FakeChatModel(["Canberra [1] is the capital [I]."] * 2), index, system_prompt="sys"
    )
    answer = await assistant.generate("capital of Australia?", mode="chat")
    assert answer.answer == "Canberra is the capital."
    events = [event async for event in assistant.stream("capital of Australia?", mode="chat")]
    streamed = "".join(getattr(event, "text", "") for event in events)
    assert streamed == "Canberra is the capital."
    assert events[-1].answer.answer == "Canberra is the capital."  # type: ignore[union-attr]


async def test_auto_mode_answers_from_a_section_the_question_names(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "start.md").write_text(
        "# Getting started\n\n## Add your own documents\n\nPut files in a folder, then run "
        "`genai-factory ingest DIR`.\n"
    )
    idx = KnowledgeIndex(EmbeddedVectorStore(tmp_path / "i"), FakeEmbedder())
    await idx.ingest_path(docs)
    model = FakeChatModel(["Run genai-factory ingest [1]."] * 2)
    assistant = AssistantService(model, idx, system_prompt="sys", min_score=0.99)
    assert (await assistant.generate("How do I add my own documents?")).route == "rag"
    # one word of the heading is not enough
    assert (await assistant.generate("How do I add a user?")).route == "chat"


class _OptionsSpy(FakeChatModel):
    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.options: list[ChatOptions | None] = []

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        self.options.append(options)
        return await super().chat(messages, options)


async def test_only_answers_from_sources_are_flagged_for_the_decline_shift(
    index: KnowledgeIndex,
) -> None:
    model = _OptionsSpy(["Use llm fallbacks [1].", "Hello!"])
    assistant = AssistantService(model, index, system_prompt="sys", top_k=2, min_score=0.2)
    assert (await assistant.generate("How do I configure a fallback model?")).route == "rag"
    assert (await assistant.generate("zzz qqq")).route == "chat"
    flags = [o.answer_from_sources if o else False for o in model.options]
    assert flags == [True, False]
