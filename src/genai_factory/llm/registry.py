"""Resolve model names to ``ChatModel`` s in one place, importing backends lazily.

``get_model("llamacpp")``, ``get_model("llamacpp:/path/model.gguf")``,
``get_model("openai_compatible:gpt-4o-mini", base_url=...)`` or ``get_model(ModelSettings(...))``.
Only the providers in :data:`PROVIDERS` can be named: configuration never imports arbitrary code.

:func:`build_chat_model` turns the ``llm`` settings into the production chain: each backend wrapped
in its own circuit breaker and retry policy, and the backends chained by a :class:`FallbackModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genai_factory.config import LLMSettings, ModelSettings
from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.base import ChatModel
from genai_factory.llm.breaker import CircuitBreakerModel, StateListener
from genai_factory.llm.fallback import FallbackListener, FallbackModel
from genai_factory.llm.retry import RetryingModel
from genai_factory.llm.worker import ModelWorker


def _llamacpp(settings: ModelSettings, worker: ModelWorker | None) -> ChatModel:
    from genai_factory.llm.llamacpp import LlamaCppModel, resolve_adapter

    return LlamaCppModel(
        settings.model_path,
        name=settings.model,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        worker=worker,
        adapter_path=resolve_adapter(settings.adapter, settings.model_path),
    )


def _openai_compatible(settings: ModelSettings, worker: ModelWorker | None) -> ChatModel:
    from genai_factory.llm.openai_compatible import OpenAICompatibleModel

    assert settings.base_url is not None  # enforced by ModelSettings
    return OpenAICompatibleModel(
        settings.base_url,
        settings.model,
        api_key=settings.resolved_api_key(),
        timeout_s=settings.timeout_s,
    )


def _fake(settings: ModelSettings, worker: ModelWorker | None) -> ChatModel:
    from genai_factory.testing.fakes import FakeChatModel

    return FakeChatModel(name=settings.model)


PROVIDERS: dict[str, Callable[[ModelSettings, ModelWorker | None], ChatModel]] = {
    "llamacpp": _llamacpp,
    "openai_compatible": _openai_compatible,
    "fake": _fake,
}


def _parse_spec(spec: str, overrides: dict[str, Any]) -> ModelSettings:
    provider, _, rest = spec.partition(":")
    if provider not in PROVIDERS:
        raise ConfigurationError(
            f"unknown model provider {provider!r}; choose one of {', '.join(sorted(PROVIDERS))}"
        )
    values: dict[str, Any] = {"provider": provider, **overrides}
    if rest and provider == "llamacpp" and rest.endswith(".gguf"):
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
    return PROVIDERS[settings.provider](settings, worker)


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
