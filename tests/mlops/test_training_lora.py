"""LoRA training on a tiny random Llama (no real weights): answer-only loss, learning, merging."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from genai_factory.exceptions import InvalidRequestError  # noqa: E402
from genai_factory.mlops.training.data import TrainingExample  # noqa: E402
from genai_factory.mlops.training.lora import (  # noqa: E402
    IGNORE,
    Encoded,
    LoraSettings,
    encode_all,
    encode_example,
    train_lora,
)

WORDS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
WORDS += ["what", "is", "the", "capital", "of", "france", "paris", "answer", "unanswerable"]


def tiny_tokenizer() -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
        "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
    )
    return tokenizer


def tiny_llama(seed: int = 0, vocab: int = 32) -> object:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        initializer_range=0.2,  # larger than the default so a few LoRA steps show
    )
    return transformers.LlamaForCausalLM(config)


def test_encoding_trains_on_the_answer_and_end_of_turn_only() -> None:
    tokenizer = tiny_tokenizer()
    example = TrainingExample(
        messages=({"role": "user", "content": "what is the capital of france"},),
        answer="paris",
        source="test",
    )
    encoded = encode_example(tokenizer, example, max_len=64)
    assert encoded is not None
    taught = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE
    ]
    assert tokenizer.convert_ids_to_tokens(taught) == ["paris", "<|im_end|>"]
    prompt = tokenizer.convert_ids_to_tokens(list(encoded.input_ids[: -len(taught)]))
    assert prompt[-2:] == ["<|im_start|>", "assistant"]
    kept, skipped = encode_all(tokenizer, [example, example], max_len=len(encoded.input_ids) - 1)
    assert (kept, skipped) == ([], 2)


def test_settings_reject_nonsense() -> None:
    with pytest.raises(InvalidRequestError, match="steps"):
        LoraSettings(steps=0)
    with pytest.raises(InvalidRequestError, match="lr"):
        LoraSettings(lr=5.0)
    with pytest.raises(InvalidRequestError):
        LoraSettings(targets=())


def _pattern_data(n: int = 8, vocab: int = 32) -> list[Encoded]:
    """Prompts of random tokens, each answered with the same short reply (learnable quickly)."""
    rng = random.Random(1)
    data = []
    for _ in range(n):
        prompt = [rng.randrange(4, vocab) for _ in range(rng.randrange(6, 10))]
        answer = [5, 9, 3]
        data.append(Encoded(tuple(prompt + answer), tuple([IGNORE] * len(prompt) + answer)))
    return data


def test_tiny_lora_run_lowers_the_loss_and_merges() -> None:
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = LoraSettings(steps=60, lr=5e-2, rank=4, alpha=8, batch_size=4, warmup=2, seed=3)
    seen: list[int] = []
    outcome = train_lora(
        model, _pattern_data(), settings, pad_id=0, on_step=lambda step, _: seen.append(step)
    )
    assert seen == list(range(1, 61))
    first, last = sum(outcome.losses[:5]) / 5, sum(outcome.losses[-5:]) / 5
    assert last < 0.5 * first, outcome.losses
    merged = outcome.model
    assert type(merged).__name__ == "LlamaForCausalLM"  # no peft wrapper left
    state = merged.state_dict()
    assert set(state) == set(before)  # LoRA folded in: no extra parameters
    changed = [k for k in before if not torch.equal(before[k], state[k])]
    assert changed and all(
        any(t in k for t in ("q_proj", "k_proj", "v_proj", "o_proj")) for k in changed
    )
    # the merged weights alone reproduce the trained behaviour
    from genai_factory.mlops.training.lora import _batch

    with torch.no_grad():
        merged_loss = float(merged(**_batch(_pattern_data(), 0)).loss)
    assert merged_loss < 0.5 * first
    # the LoRA matrices themselves are kept for the adapter export: A and B of every projection
    assert len(outcome.adapter) == 2 * 4 * 2
    assert all(".lora_A." in k or ".lora_B." in k for k in outcome.adapter)


def test_training_is_reproducible_for_a_seed() -> None:
    settings = LoraSettings(steps=5, lr=1e-2, rank=2, batch_size=2, warmup=0, seed=7)
    a = train_lora(tiny_llama(), _pattern_data(), settings, pad_id=0).losses
    b = train_lora(tiny_llama(), _pattern_data(), settings, pad_id=0).losses
    assert a == b


def test_no_data_is_an_error() -> None:
    with pytest.raises(InvalidRequestError):
        train_lora(tiny_llama(), [], LoraSettings(steps=1), pad_id=0)
