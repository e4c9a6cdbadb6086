"""Build the running components from settings: one place, used by the service and the CLI.

:func:`assemble` builds the model chain once, whole, from the inside out: each backend behind its
circuit breaker and retry policy, the primary in a swapper that can serve a promoted champion, the
backends chained by a fallback model (``llm.registry.build_chat_model``), then
:class:`~genai_factory.gateway.metered.MeteredModel` (each call charged to the requesting key, when
the gateway enforces keys) and :class:`~genai_factory.observability.traced_model.TracedModel` (one
span per call) outermost. The assistant and its agent run on that same chain; nothing is wrapped
later, except that with ``agents.adapter`` the agent (and the orchestrator's tool specialists) run
on a second chain of the same model with that LoRA adapter (:func:`_agent_model`). The LLM and the
embedder share one :class:`ModelWorker`, so their computations never overlap on a small machine. Tests pass their own model or embedder instead of the configured ones (the
metering and tracing wrappers still go around them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from genai_factory.agents.assembly import build_agent
from genai_factory.assistant.extractive import SentenceExtractor
from genai_factory.assistant.orchestrator import Orchestrator
from genai_factory.assistant.service import AssistantService
from genai_factory.assistant.specialists import build_specialists
from genai_factory.config import Settings
from genai_factory.exceptions import ServiceNotReady
from genai_factory.gateway.metered import MeteredModel
from genai_factory.gateway.service import GatewayService
from genai_factory.llm.base import ChatModel
from genai_factory.llm.registry import build_chat_model, provider_capabilities
from genai_factory.llm.swappable import SwappableModel
from genai_factory.llm.worker import ModelWorker
from genai_factory.memory.registry import build_session_store
from genai_factory.observability.traced_model import TracedModel
from genai_factory.rag.embedding import Embedder, get_embedder
from genai_factory.rag.embedding_cache import CachedEmbedder
from genai_factory.rag.index import IngestReport, Progress
from genai_factory.rag.serving import ServingIndex, build_serving_index
from genai_factory.safety.registry import SafetyService
from genai_factory.safety.tools import screen_agent_tools

log = structlog.get_logger(__name__)


@dataclass
class Components:
    """Everything a process needs to answer questions. Close it with :meth:`aclose`."""

    settings: Settings
    worker: ModelWorker
    model: ChatModel
    embedder: Embedder
    index: ServingIndex
    assistant: AssistantService
    breaker_states: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    safety: SafetyService | None = None
    #: The primary backend's swapper when the service may serve a promoted champion, else ``None``.
    swappable: SwappableModel | None = None
    #: The agent's own model chain (``agents.adapter``), else ``None`` (the agent uses ``model``).
    agent_model: ChatModel | None = None

    async def warm_up(self) -> None:
        """Load the model weights now rather than on the first request."""
        for part in (_innermost(self.model), self.embedder, self.safety):
            loader = getattr(part, "load", None)
            if loader is not None:
                await loader()

    async def ingest_bundled(self, progress: Progress | None = None) -> IngestReport | None:
        """On an empty index, build a first index version from the configured knowledge directories."""
        if not self.settings.rag.ingest_on_start or await self.index.count() > 0:
            return None
        directories = []
        for directory in self.settings.rag.knowledge_dirs:
            if not directory.exists():
                log.warning("knowledge_dir_missing", path=str(directory))
                continue
            log.info("indexing_knowledge_base", path=str(directory))
            directories.append(directory)
        _, report = await self.index.rebuild(directories, progress=progress, note="knowledge_dirs")
        return report

    def require_ready(self) -> None:
        if not self.ready:
            raise ServiceNotReady("the assistant is still loading its model and index")

    async def aclose(self) -> None:
        if self.assistant.history is not None:  # first: it stops summaries still using the model
            await self.assistant.history.aclose()
        await self.index.aclose()
        await self.model.aclose()
        if self.agent_model is not None:
            await self.agent_model.aclose()
        await self.embedder.aclose()
        self.worker.close()


def _innermost(model: ChatModel) -> Any:
    """The backend under the wrappers (for warm-up): follows ``inner`` / first of ``models``."""
    current: Any = model
    while True:
        if hasattr(current, "inner"):
            current = current.inner
        elif hasattr(current, "models"):
            current = current.models[0]
        else:
            return current


def build_orchestrator(
    settings: Settings,
    model: ChatModel,
    searcher: ServingIndex | None,
    *,
    system_prompt: str,
    extractor: SentenceExtractor | None,
    agent_model: ChatModel | None = None,
) -> Orchestrator | None:
    """The orchestrator of the agent route, or ``None`` when it (or the agent) is disabled or no
    specialist is available."""
    config = settings.agents
    if not (config.enabled and config.orchestrator.enabled):
        return None
    specialists = build_specialists(
        settings,
        model,
        searcher,
        system_prompt=system_prompt,
        extractor=extractor,
        agent_model=agent_model,
    )
    if not specialists:
        return None
    return Orchestrator(
        specialists,
        max_plan_steps=config.orchestrator.max_plan_steps,
        timeout_s=config.orchestrator.timeout_s,
    )


def assemble(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    embedder: Embedder | None = None,
    on_breaker_change: Callable[[str, str], None] | None = None,
    gateway: GatewayService | None = None,
    safety: SafetyService | None = None,
) -> Components:
    """Create (but do not load) every component named by ``settings``.

    ``gateway``: the process's gateway; with keys enforced, model calls are metered by it.
    ``safety``: the guards, when the caller made them already (else made here when enabled).
    """
    worker = ModelWorker(name="models")
    breaker_states: dict[str, str] = {}

    def breaker_changed(name: str, state: str) -> None:
        breaker_states[name] = str(state)
        log.warning("circuit_breaker_state", model=name, state=str(state))
        if on_breaker_change is not None:
            on_breaker_change(name, state)

    swappable: list[SwappableModel] = []

    def swapper(primary: ChatModel) -> ChatModel:
        swappable.append(SwappableModel(primary))
        return swappable[0]

    serve_champion = (
        settings.mlops.serve_champion and provider_capabilities(settings.llm.provider).local_weights
    )
    chain = model or build_chat_model(
        settings.llm,
        worker=worker,
        on_breaker_change=breaker_changed,
        wrap_primary=swapper if serve_champion else None,
    )
    if gateway is not None and gateway.enforcing:
        chain = MeteredModel(chain, gateway)
    chat_model: ChatModel = TracedModel(chain)
    agent_model = None if model is not None else _agent_model(settings, worker, gateway)
    chosen_embedder = embedder or get_embedder(settings.embeddings, worker=worker)
    if embedder is None and settings.embeddings.cache:
        chosen_embedder = CachedEmbedder(chosen_embedder, settings.cache_dir())
    rag = settings.rag
    index = build_serving_index(settings, chosen_embedder)
    service = settings.service
    if safety is None and settings.safety.enabled:
        safety = SafetyService(settings)
    extractor = (
        SentenceExtractor(
            chosen_embedder, min_score=rag.extract_min_score, source_chars=rag.source_chars
        )
        if rag.extract_on_decline
        else None
    )
    assistant = AssistantService(
        chat_model,
        index,
        system_prompt=service.system_prompt,
        top_k=rag.top_k,
        min_score=rag.min_score,
        max_tokens=settings.llm.max_tokens,
        temperature=settings.llm.temperature,
        excerpt_chars=rag.excerpt_chars,
        source_chars=rag.source_chars,
        prices=settings.llm.pricing,
        history=build_session_store(settings, model=chat_model),
        agent=build_agent(settings, agent_model or chat_model, index),
        auto_agent=settings.agents.auto_route,
        safety=safety.pipeline if safety else None,
        extractor=extractor,
        orchestrator=build_orchestrator(
            settings,
            chat_model,
            index,
            system_prompt=service.system_prompt,
            extractor=extractor,
            agent_model=agent_model,
        ),
    )
    if safety is not None and assistant.agent is not None:
        screen_agent_tools(assistant.agent, safety.pipeline)  # indirect injection via tools
    return Components(
        settings=settings,
        worker=worker,
        model=chat_model,
        embedder=chosen_embedder,
        index=index,
        assistant=assistant,
        breaker_states=breaker_states,
        safety=safety,
        swappable=swappable[0] if swappable else None,
        agent_model=agent_model,
    )


def _agent_model(
    settings: Settings, worker: ModelWorker, gateway: GatewayService | None
) -> ChatModel | None:
    """The agent's chain when ``agents.adapter`` names an adapter: the configured model with
    that adapter instead of ``llm.adapter`` (same worker, so it never computes beside the
    assistant's model); ``None`` otherwise."""
    if (
        not settings.agents.enabled
        or not provider_capabilities(settings.llm.provider).local_weights
    ):
        return None
    from genai_factory.mlops.registry import agent_adapter_path

    adapter = agent_adapter_path(settings)
    if adapter is None:
        return None
    log.info("agent_adapter", adapter=str(adapter))
    llm = settings.llm.model_copy(update={"adapter": str(adapter)})
    chain = build_chat_model(llm, worker=worker)
    if gateway is not None and gateway.enforcing:
        chain = MeteredModel(chain, gateway)
    return TracedModel(chain)
