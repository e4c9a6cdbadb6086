"""What a call may cost before it is made, and what it cost after, for the configured model chain.

A model's price comes from ``llm.pricing`` (USD per million tokens) when it is listed there, even
for a local model. An unlisted model is *free* when its provider's backend is free of charge (it
runs on this machine: ``llamacpp``, and the ``fake``) or when ``llm.free_models`` names it;
otherwise it is *unpriced*, and keys with a budget are refused rather than served at an unknown
cost.

The worst case of a call is priced at the most expensive model of the chain (primary and
fallbacks), input and output separately, because any of them may end up answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from genai_factory.config import LLMSettings, Price
from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.registry import provider_capabilities

_FREE = Price()


@dataclass(frozen=True)
class PriceBook:
    """Prices of the models a call may reach. ``chain`` is ``(free of charge, model id)`` in
    order: whether the model's backend costs nothing, and the model id."""

    prices: Mapping[str, Price]
    chain: tuple[tuple[bool, str], ...]
    free_models: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> PriceBook:
        chain = tuple(
            (provider_capabilities(model.provider).free_of_charge, model.model)
            for model in (llm, *llm.fallbacks)
        )
        return cls(dict(llm.pricing), chain, frozenset(llm.free_models))

    def _known(self, free: bool, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        if model in self.free_models or free:
            return _FREE
        return None

    def unpriced(self) -> list[str]:
        """Models of the chain with neither a price nor a free status."""
        return [model for free, model in self.chain if self._known(free, model) is None]

    def worst_price(self) -> Price:
        """The highest input and output prices over the chain.

        Raises:
            ConfigurationError: a model of the chain has no price and is not free.
        """
        missing = self.unpriced()
        if missing:
            raise ConfigurationError(
                f"model(s) {', '.join(missing)} have no price in llm.pricing and are not in "
                "llm.free_models; keys with a budget cannot use them"
            )
        known = [self._known(p, m) or _FREE for p, m in self.chain]
        return Price(
            input_per_million=max(p.input_per_million for p in known),
            output_per_million=max(p.output_per_million for p in known),
        )

    def price_of(self, model: str) -> Price:
        """The price of the model that answered; an unknown name is charged the chain's worst."""
        if model in self.prices:
            return self.prices[model]
        if model in self.free_models:
            return _FREE
        for free, chained in self.chain:
            if chained == model and free:
                return _FREE
        return self.worst_price()


def cost_usd(price: Price, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for the tokens at ``price``."""
    return (
        prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
    ) / 1_000_000
