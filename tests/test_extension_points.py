"""Adding a component takes one module plus one registry line.

Each case below is such a module (the class and its factory, defined here) and the one line that
registers it: an entry put into its table of :mod:`genai_factory.components` (with ``monkeypatch``,
so it is gone after the test). The component is then usable by name through the normal
resolution path, and the settings accept the name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from genai_factory import components
from genai_factory.agents.assembly import build_agent
from genai_factory.config import GuardSpec, ModelSettings, load_settings
from genai_factory.exceptions import ConfigurationError, SafetyViolation
from genai_factory.llm.base import ChatModel
from genai_factory.llm.registry import build_chat_model, get_model, provider_capabilities
from genai_factory.llm.worker import ModelWorker
from genai_factory.messages import ChatOptions, ChatResponse, Message, Usage
from genai_factory.rag.stores import EmbeddedVectorStore, get_store
from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.guard import Guard, GuardContext, Verdict
from genai_factory.safety.registry import SafetyService
from genai_factory.testing.fakes import FakeChatModel

HERE = __name__


# -- an LLM backend -------------------------------------------------------------------------
class ShoutingModel(ChatModel):
    """Answers the last message in capitals; costs nothing and calls tools natively."""

    native_tools = True
    free_of_charge = True

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_settings(cls, settings: ModelSettings, worker: ModelWorker | None) -> ShoutingModel:
        return cls(f"shout:{settings.model}")

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        text = messages[-1].content.upper()
        return ChatResponse(
            text=text, model=self.name, usage=Usage(prompt_tokens=1, completion_tokens=1)
        )


async def test_a_new_llm_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="unknown model provider 'shout'"):
        get_model("shout:x")
    monkeypatch.setitem(components.LLM_PROVIDERS, "shout", components.Lazy(f"{HERE}:ShoutingModel"))

    model = get_model("shout:loud")
    answer = await model.chat([Message(role="user", content="hello")])
    assert (answer.text, answer.model) == ("HELLO", "shout:loud")
    assert provider_capabilities("shout").native_tools

    settings = load_settings(llm={"provider": "shout", "model": "m"})
    chain = build_chat_model(settings.llm)  # retried and behind a breaker, like any backend
    assert (await chain.chat([Message(role="user", content="hi")])).text == "HI"
    assert chain.native_tools and chain.free_of_charge


# -- a guard --------------------------------------------------------------------------------
class NoShoutingGuard:
    """Blocks texts written in capitals."""

    name = "no_shouting"

    def __init__(self, action: str) -> None:
        self.action = action

    def check(self, text: str, context: GuardContext) -> Verdict:
        if text.isupper():
            return Verdict.block(self.name, "shouting")
        return Verdict.allow(self.name)


def no_shouting_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    return NoShoutingGuard(spec.action)


def test_a_new_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    route = {"default": {"input": [{"guard": "no_shouting", "action": "block"}]}}
    with pytest.raises(ConfigurationError, match="unknown guard 'no_shouting'"):
        load_settings(safety={"routes": route})
    entry = components.GuardEntry(f"{HERE}:no_shouting_guard", actions=("block",))
    monkeypatch.setitem(components.GUARDS, "no_shouting", entry)

    settings = load_settings(safety={"routes": route})
    pipeline = SafetyService(settings).pipeline
    assert pipeline.check_input("a calm question").text == "a calm question"
    with pytest.raises(SafetyViolation):
        pipeline.check_input("A LOUD QUESTION")
    with pytest.raises(ConfigurationError, match="accepts actions block, not 'warn'"):
        load_settings(
            safety={"routes": {"default": {"input": [{"guard": "no_shouting", "action": "warn"}]}}}
        )


# -- a tool ---------------------------------------------------------------------------------
class EchoArgs(BaseModel):
    text: str


class EchoTool:
    """Says back what it was given."""

    name = "echo"
    description = "Repeat the text."
    args_schema = EchoArgs
    timeout_s = 1.0

    async def run(self, args: EchoArgs) -> str:
        return args.text


def echo_tool(deps: Any) -> EchoTool:
    return EchoTool()


def test_a_new_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="unknown agent tool 'echo'"):
        load_settings(agents={"tools": ["echo"]})
    monkeypatch.setitem(components.TOOLS, "echo", components.Lazy(f"{HERE}:echo_tool"))

    settings = load_settings(llm={"provider": "fake"}, agents={"tools": ["calculator", "echo"]})
    agent = build_agent(settings, FakeChatModel(), searcher=None)
    assert agent is not None
    assert list(agent.tools) == ["calculator", "echo"]
    assert isinstance(agent.tools["echo"], EchoTool)
    assert "echo" in load_settings().agents.tools  # a registered tool is on by default


# -- a vector store -------------------------------------------------------------------------
class NamedEmbeddedStore(EmbeddedVectorStore):
    """The embedded store under a name of its own (it takes the serving index's arguments)."""


def test_a_new_vector_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown vector store 'mine'"):
        get_store("mine", directory=tmp_path, embedder="e")
    monkeypatch.setitem(
        components.VECTOR_STORES, "mine", components.Lazy(f"{HERE}:NamedEmbeddedStore")
    )

    store = get_store("mine", directory=tmp_path / "vectors", embedder="e")
    assert isinstance(store, NamedEmbeddedStore)
    assert load_settings(rag={"store": "mine"}).rag.store == "mine"
