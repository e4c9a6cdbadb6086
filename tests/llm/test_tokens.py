"""Token estimates and cost."""

from __future__ import annotations

import pytest

from genai_factory.config import Price
from genai_factory.llm.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    cost_usd,
    estimate_prompt_tokens,
    estimate_tokens,
    priced,
)
from genai_factory.messages import Message, Usage
from genai_factory.testing.fakes import FakeChatModel

PRICES = {"gpt-x": Price(input_per_million=2.0, output_per_million=8.0)}


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("hello", 2),  # five characters: two pieces of at most four
        ("a cat sat", 3),
        ("Hi, you!", 4),  # two words and two punctuation marks
        ("internationalization", 5),  # 20 characters
        ("   \n\t ", 0),
        ("naïve café", 3),  # accented letters are word characters: 2 + 1
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_grows_with_the_text() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. "
    assert estimate_tokens(sentence * 10) == 10 * estimate_tokens(sentence)
    assert estimate_tokens(sentence + "again") > estimate_tokens(sentence)


def test_estimate_errs_high_on_english_prose() -> None:
    # About 4 characters per token is the usual BPE rate on English; the estimate is not below it.
    prose = (
        "Retrieval augmented generation grounds the answer of a language model in documents "
        "that were retrieved for the question, and cites them."
    )
    assert estimate_tokens(prose) >= len(prose) / 4


def test_prompt_estimate_adds_template_overhead_per_message() -> None:
    messages = [Message.system("Be brief."), Message.user("What is RAG?")]
    expected = estimate_tokens("Be brief.") + estimate_tokens("What is RAG?")
    assert estimate_prompt_tokens(messages) == expected + 2 * MESSAGE_OVERHEAD_TOKENS
    assert estimate_prompt_tokens([]) == 0


def test_chat_models_count_with_the_estimate_by_default() -> None:
    assert FakeChatModel().count_tokens("some words here") == estimate_tokens("some words here")


def test_cost_from_the_price_table() -> None:
    assert cost_usd("gpt-x", 1_000_000, 0, PRICES) == pytest.approx(2.0)
    assert cost_usd("gpt-x", 500, 250, PRICES) == pytest.approx((500 * 2 + 250 * 8) / 1e6)


def test_unpriced_models_cost_nothing() -> None:
    assert cost_usd("local-model", 10_000, 10_000, PRICES) == 0.0
    assert cost_usd("gpt-x", 10, 10, {}) == 0.0


def test_priced_fills_the_cost_on_a_copy() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500, estimated=True)
    with_cost = priced(usage, "gpt-x", PRICES)
    assert with_cost.cost_usd == pytest.approx(0.006)
    assert with_cost.prompt_tokens == 1000
    assert with_cost.estimated
    assert usage.cost_usd == 0.0


def test_usage_adds_up() -> None:
    total = Usage(prompt_tokens=3, completion_tokens=4, cost_usd=0.5) + Usage(
        prompt_tokens=1, completion_tokens=2, cost_usd=0.25, estimated=True
    )
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (4, 6, 10)
    assert total.cost_usd == pytest.approx(0.75)
    assert total.estimated
