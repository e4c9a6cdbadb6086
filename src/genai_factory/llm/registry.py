"""Resolve model names to ``ChatModel`` s in one place, importing backends lazily.

``get_model("llamacpp")``, ``get_model("llamacpp:/path/model.gguf")``,
``get_model("openai_compatible:gpt-4o-mini", base_url=...)`` or ``get_model(ModelSettings(...))``.
Only the providers in :data:`PROVIDERS` can be named: configuration never imports arbitrary code.
:func:`provider_capabilities` tells what a provider's backend can do before a model exists.

:func:`build_chat_model` turns the ``llm`` settings into the production chain: each backend wrapped
in its own circuit breaker and retry policy, and the backends chained by a :class:`FallbackModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genai_factory.components import LLM_PROVIDERS, lookup
from genai_factory.config import LLMSettings, ModelSettings
from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.base import Capabilities, ChatModel
from genai_factory.llm.breaker import CircuitBreakerModel, StateListener
from genai_factory.llm.fallback import FallbackListener, FallbackModel
from genai_factory.llm.retry import RetryingModel
from genai_factory.llm.worker import ModelWorker

#: Provider name → its ``ChatModel`` class: the table of :mod:`genai_factory.components`.
PROVIDERS = LLM_PROVIDERS


def backend_class(provider: str) -> type[ChatModel]:
    """The ``ChatModel`` class registered as ``provider`` (its module is imported now).

    Raises:
        ConfigurationError: ``provider`` is not registered.
    """
    found = lookup(PROVIDERS, provider, "model provider").load()
    if not (isinstance(found, type) and issubclass(found, ChatModel)):
        raise ConfigurationError(f"model provider {provider!r} is not a ChatModel class")
    return found


def provider_capabilities(name: str) -> Capabilities:
    """What the backend registered as ``name`` can do, known before any model is built."""
    return backend_class(name).class_capabilities()


def _parse_spec(spec: str, overrides: dict[str, Any]) -> ModelSettings:
    provider, _, rest = spec.partition(":")
    local = backend_class(provider).local_weights
    values: dict[str, Any] = {"provider": provider, **overrides}
    if rest and local and rest.endswith(".gguf"):
        values["model_path"] = rest
        values.setdefault("model", rest.rsplit("/", 1)[-1].removesuffix(".gguf"))
    elif rest:
        values["model"] = rest
    try:
        return ModelSettings(**values)
    except ValueError as exc:
        raise ConfigurationError(f"invalid model spec {spec!r}: {exc}") from exc


def get_model(
    spec: str | ModelSettings, *, worker: ModelWorker | None = None, **overrides: Any
) -> ChatModel:
    """One bare backend (no retry, breaker or fallback) from a name or settings."""
    settings = _parse_spec(spec, overrides) if isinstance(spec, str) else spec
    return backend_class(settings.provider).from_settings(settings, worker)


def build_chat_model(
    settings: LLMSettings,
    *,
    worker: ModelWorker | None = None,
    on_breaker_change: StateListener | None = None,
    on_fallback: FallbackListener | None = None,
    wrap_primary: Callable[[ChatModel], ChatModel] | None = None,
) -> ChatModel:
    """The configured primary and fallbacks, each retried and behind its own breaker.

    ``wrap_primary`` wraps the bare primary backend first (the service's champion swapper).
    """
    resilience = settings.resilience

    def harden(model: ChatModel) -> ChatModel:
        breaker = CircuitBreakerModel(
            model,
            failure_threshold=resilience.breaker_failure_threshold,
            cooldown_s=resilience.breaker_cooldown_s,
            on_state_change=on_breaker_change,
        )
        return RetryingModel(
            breaker,
            max_attempts=resilience.max_attempts,
            initial_backoff_s=resilience.initial_backoff_s,
            max_backoff_s=resilience.max_backoff_s,
            deadline_s=resilience.deadline_s,
        )

    primary = get_model(settings, worker=worker)
    if wrap_primary is not None:
        primary = wrap_primary(primary)
    chain = [harden(primary)]
    chain += [harden(get_model(backup, worker=worker)) for backup in settings.fallbacks]
    if len(chain) == 1:
        return chain[0]
    return FallbackModel(chain[0], *chain[1:], on_fallback=on_fallback)
