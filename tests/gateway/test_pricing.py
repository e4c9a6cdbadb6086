"""Prices of the model chain: free local models, unpriced remote ones, the worst case."""

from __future__ import annotations

import pytest

from genai_factory.config import LLMSettings
from genai_factory.exceptions import ConfigurationError
from genai_factory.gateway.pricing import PriceBook, cost_usd


def book(**llm: object) -> PriceBook:
    return PriceBook.from_settings(LLMSettings(**llm))  # type: ignore[arg-type]


def test_local_models_are_free_unless_priced() -> None:
    local = book(provider="llamacpp", model="smollm2")
    assert local.unpriced() == []
    assert local.worst_price().input_per_million == 0
    assert local.price_of("smollm2").output_per_million == 0
    priced = book(provider="fake", model="f", pricing={"f": {"input_per_million": 3}})
    assert priced.worst_price().input_per_million == 3


def test_remote_models_need_a_price_or_a_free_mark() -> None:
    remote = book(provider="openai_compatible", base_url="http://127.0.0.1:1", model="gpt-x")
    assert remote.unpriced() == ["gpt-x"]
    with pytest.raises(ConfigurationError, match="gpt-x have no price"):
        remote.worst_price()
    free = book(
        provider="openai_compatible", base_url="http://127.0.0.1:1", model="gpt-x",
        free_models=["gpt-x"],
    )  # fmt: skip
    assert free.unpriced() == []


def test_the_worst_case_is_the_dearest_model_of_the_chain() -> None:
    chain = book(
        provider="fake",
        model="cheap",
        fallbacks=[
            {"provider": "openai_compatible", "base_url": "http://127.0.0.1:1", "model": "dear"}
        ],
        pricing={
            "cheap": {"input_per_million": 1, "output_per_million": 10},
            "dear": {"input_per_million": 5, "output_per_million": 2},
        },
    )
    worst = chain.worst_price()
    assert (worst.input_per_million, worst.output_per_million) == (5, 10)
    assert chain.price_of("cheap").input_per_million == 1
    # A name the provider made up (a dated snapshot id) is charged the worst case.
    assert chain.price_of("dear-2026-01-01") == worst
    assert cost_usd(worst, 1_000_000, 100_000) == pytest.approx(6.0)
