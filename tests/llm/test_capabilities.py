"""Capabilities are attributes of the backend: known from a provider name, kept by wrappers."""

from __future__ import annotations

import pytest

from genai_factory.config import EmbeddingSettings
from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.base import Capabilities
from genai_factory.llm.breaker import CircuitBreakerModel
from genai_factory.llm.fallback import FallbackModel
from genai_factory.llm.registry import get_model, provider_capabilities
from genai_factory.llm.retry import RetryingModel
from genai_factory.llm.swappable import SwappableModel
from genai_factory.rag.embedding import get_embedder
from genai_factory.testing.fakes import FakeChatModel


def test_each_provider_says_what_it_can_do() -> None:
    assert provider_capabilities("llamacpp") == Capabilities(
        local_weights=True, native_tools=False, grammar=True, free_of_charge=True
    )
    remote = provider_capabilities("openai_compatible")
    assert (remote.local_weights, remote.native_tools, remote.free_of_charge) == (
        False,
        True,
        False,
    )
    fake = provider_capabilities("fake")
    assert not fake.local_weights and fake.free_of_charge


def test_an_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="registered: llamacpp, openai_compatible, fake"):
        provider_capabilities("nope")


class LocalFake(FakeChatModel):
    local_weights = True
    grammar = True


def test_wrappers_take_the_capabilities_of_the_model_they_wrap() -> None:
    local, remote = LocalFake(), get_model("fake:x")
    chain = FallbackModel(RetryingModel(CircuitBreakerModel(local)), remote)
    assert chain.capabilities == local.capabilities
    assert chain.local_weights and chain.grammar
    swappable = SwappableModel(remote)
    assert not swappable.local_weights


async def test_a_swap_brings_the_new_models_capabilities() -> None:
    swappable = SwappableModel(FakeChatModel())
    await swappable.swap(LocalFake(), version="2")
    assert swappable.local_weights


def test_an_unknown_embeddings_provider_is_an_error_not_a_fake() -> None:
    settings = EmbeddingSettings.model_construct(provider="word2vec")
    with pytest.raises(ConfigurationError, match="unknown embeddings provider 'word2vec'"):
        get_embedder(settings)
