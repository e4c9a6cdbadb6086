"""What a call may cost before it is made, and what it cost after, for the configured model chain.

A model's price comes from ``llm.pricing`` (USD per million tokens) when it is listed there, even
for a local model. An unlisted model is *free* when its provider is ``llamacpp`` or ``fake`` (it
runs on this machine) or when ``llm.free_models`` names it; otherwise it is *unpriced*, and keys
with a budget are refused rather than served at an unknown cost.

The worst case of a call is priced at the most expensive model of the chain (primary and
fallbacks), input and output separately, because any of them may end up answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from genai_factory.config import LLMSettings, Price
from genai_factory.exceptions import ConfigurationError

#: Providers that run on this machine: unpriced models of theirs cost nothing.
FREE_PROVIDERS = frozenset({"llamacpp", "fake"})
_FREE = Price()


@dataclass(frozen=True)
class PriceBook:
    """Prices of the models a call may reach. ``chain`` is ``(provider, model id)`` in order."""

    prices: Mapping[str, Price]
    chain: tuple[tuple[str, str], ...]
    free_models: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> PriceBook:
        chain = ((llm.provider, llm.model), *((f.provider, f.model) for f in llm.fallbacks))
        return cls(dict(llm.pricing), tuple(chain), frozenset(llm.free_models))

    def _known(self, provider: str, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        if model in self.free_models or provider in FREE_PROVIDERS:
            return _FREE
        return None

    def unpriced(self) -> list[str]:
        """Models of the chain with neither a price nor a free status."""
        return [model for provider, model in self.chain if self._known(provider, model) is None]

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
        for provider, chained in self.chain:
            if chained == model and provider in FREE_PROVIDERS:
                return _FREE
        return self.worst_price()


def cost_usd(price: Price, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for the tokens at ``price``."""
    return (
        prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
    ) / 1_000_000
