"""The registered components of every extension point: one table each, name → lazy factory.

These tables are the allowlists. Settings may only name a component listed here (``config.py``
validates names against these very tables when settings load), and each extension point resolves
a name through its own table alone: :func:`genai_factory.llm.registry.get_model`,
:func:`genai_factory.rag.embedding.get_embedder`, :func:`genai_factory.rag.stores.get_store`,
:func:`genai_factory.memory.registry.build_session_store`,
:func:`genai_factory.safety.registry.build_guard` and
:func:`genai_factory.agents.registry.build_tools`.

A factory is written ``"module:attribute"`` and imported on first use, so importing this module
(or ``config.py``) imports no backend: no llama.cpp, no torch, no Qdrant client. The tables live
apart from the registries because ``config.py`` needs the names and the registries need
``config.py``; this module imports nothing of the package but the exceptions.

What each table's factory is called with:

* :data:`LLM_PROVIDERS`: a :class:`~genai_factory.llm.base.ChatModel` subclass, built with its
  ``from_settings(settings, worker)``; its capabilities are class attributes.
* :data:`EMBEDDERS`: ``factory(settings: EmbeddingSettings, worker) -> Embedder``.
* :data:`VECTOR_STORES`: a ``VectorStore`` class, called with keyword arguments (the serving
  index passes ``directory=`` and ``embedder=`` to every store but Qdrant).
* :data:`SESSION_STORES`: ``factory(settings: Settings) -> SessionStore`` (``memory.backend``;
  ``auto`` is resolved to a name first).
* :data:`GUARDS`: ``factory(spec: GuardSpec, resources: GuardResources) -> Guard``, with the
  actions the guard accepts.
* :data:`TOOLS`: ``factory(deps: ToolDeps) -> Tool | str`` (a string is why it was left out); the
  table's order is the order tools are offered to a model.
* :data:`RERANKERS`: ``factory(embedder, weight=...) -> Reranker`` (``none`` means no reranker).
* :data:`JOBS`: the scheduled jobs' commands (see the table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TypeVar

from genai_factory.exceptions import ConfigurationError

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """A factory named ``"module:attribute"`` (``attribute`` may be dotted), imported on use."""

    target: str

    def load(self) -> object:
        module_name, _, attribute = self.target.partition(":")
        found: object = import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
        return found


@dataclass(frozen=True)
class GuardEntry(Lazy):
    """A guard's factory and the actions a route may give it (``block`` on a context guard
    drops the chunk or tool output)."""

    actions: tuple[str, ...] = ("block", "warn")


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """The message for a name that is not registered, naming the choices."""
    return f"unknown {kind} {name!r}; registered: {', '.join(choices)}"


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """``table[name]``, or :class:`ConfigurationError` naming the registered choices."""
    try:
        return table[name]
    except KeyError:
        raise ConfigurationError(unknown_name(kind, name, table)) from None


LLM_PROVIDERS: dict[str, Lazy] = {
    "llamacpp": Lazy("genai_factory.llm.llamacpp:LlamaCppModel"),
    "openai_compatible": Lazy("genai_factory.llm.openai_compatible:OpenAICompatibleModel"),
    "fake": Lazy("genai_factory.testing.fakes:FakeChatModel"),
}

EMBEDDERS: dict[str, Lazy] = {
    "minilm": Lazy("genai_factory.rag.embedding:minilm_embedder"),
    "openai_compatible": Lazy("genai_factory.rag.embedding:openai_compatible_embedder"),
    "fake": Lazy("genai_factory.rag.embedding:fake_embedder"),
}

VECTOR_STORES: dict[str, Lazy] = {
    "embedded": Lazy("genai_factory.rag.stores.embedded:EmbeddedVectorStore"),
    "qdrant": Lazy("genai_factory.rag.stores.qdrant:QdrantVectorStore"),
}

SESSION_STORES: dict[str, Lazy] = {
    "memory": Lazy("genai_factory.memory.registry:in_process_store"),
    "sqlite": Lazy("genai_factory.memory.registry:sqlite_store"),
    "redis": Lazy("genai_factory.memory.registry:redis_store"),
}

GUARDS: dict[str, GuardEntry] = {
    "injection": GuardEntry("genai_factory.safety.registry:injection_guard"),
    "toxicity": GuardEntry("genai_factory.safety.registry:toxicity_guard"),
    "pii": GuardEntry("genai_factory.safety.registry:pii_guard", ("redact", "block", "warn")),
    "groundedness": GuardEntry(
        "genai_factory.safety.registry:groundedness_guard", ("warn", "strip", "block")
    ),
    "prompt_leak": GuardEntry("genai_factory.safety.registry:prompt_leak_guard"),
}

RERANKERS: dict[str, Lazy] = {
    "sentence": Lazy("genai_factory.rag.rerank:SentenceMaxSimReranker"),
}

TOOLS: dict[str, Lazy] = {
    "sql_schema": Lazy("genai_factory.agents.registry:sql_schema_tool"),
    "sql_query": Lazy("genai_factory.agents.registry:sql_query_tool"),
    "calculator": Lazy("genai_factory.agents.registry:calculator_tool"),
    "knowledge_search": Lazy("genai_factory.agents.registry:knowledge_search_tool"),
}

#: Scheduled jobs: name → the words of its ``genai-factory`` command (not a factory: a job runs
#: as a process of its own).
JOBS: dict[str, tuple[str, ...]] = {
    "reindex": ("jobs", "reindex"),
    "drift": ("jobs", "drift"),
    "train_llm": ("train", "llm"),
    "train_guard": ("train", "guard"),
    "loop": ("jobs", "loop"),
}
