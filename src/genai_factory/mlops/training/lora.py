"""LoRA fine-tuning of a Llama-architecture causal LM on CPU (transformers + peft).

The embedded model ships only as a GGUF file; transformers reads it (de-quantized to float32) and
its tokenizer and chat template straight from that file. Each example is rendered with the model's
chat template exactly as llama.cpp's chat handler renders it at serving time (no extra BOS: the
template holds the special tokens), and the loss covers the answer tokens and the end-of-turn token
only: the model learns what to reply, not to predict the question.

Training is a plain loop (AdamW, linear warm-up then linear decay, gradient clipping), small enough
to read and deterministic for a given seed on CPU. :func:`train_lora` returns the merged model (LoRA
folded into the base weights), ready for :func:`~genai_factory.mlops.training.gguf_export.export_gguf`,
and the LoRA matrices, ready for :func:`~genai_factory.mlops.training.adapter_export.export_lora_gguf`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_factory.exceptions import ConfigurationError, InvalidRequestError
from genai_factory.mlops.training.data import TrainingExample

#: Label of the positions the loss ignores (transformers' convention).
IGNORE = -100
#: The attention projections of a Llama block: where LoRA goes by default.
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
#: The MLP projections of a Llama block.
MLP = ("gate_proj", "up_proj", "down_proj")


def lora_targets(spec: str) -> tuple[str, ...]:
    """The projections named by ``spec``: ``attention``, ``all`` (attention and MLP), or a
    comma-separated list of projection names.

    Raises:
        InvalidRequestError: a name is not a projection of a Llama block.
    """
    named = {"attention": ATTENTION, "all": ATTENTION + MLP}
    if spec.strip() in named:
        return named[spec.strip()]
    names = tuple(dict.fromkeys(part.strip() for part in spec.split(",") if part.strip()))
    unknown = [name for name in names if name not in ATTENTION + MLP]
    if unknown or not names:
        raise InvalidRequestError(
            f"unknown LoRA target {', '.join(unknown) or spec!r}: use attention, all, or some of "
            f"{', '.join(ATTENTION + MLP)}"
        )
    return names


@dataclass(frozen=True)
class LoraSettings:
    """Hyper-parameters of one fine-tuning run (all logged as MLflow params)."""

    steps: int = 150
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    batch_size: int = 4
    max_len: int = 384
    seed: int = 0
    warmup: int = 10
    targets: tuple[str, ...] = ATTENTION
    threads: int = 2

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "lr": 0 < self.lr < 1,
            "rank": self.rank >= 1,
            "batch size": self.batch_size >= 1,
            "max length": self.max_len >= 8,
            "warm-up": self.warmup >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InvalidRequestError(f"invalid training settings: {', '.join(bad)}")
        if not self.targets:
            raise InvalidRequestError("LoRA needs at least one target module")

    def as_params(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "lora_rank": self.rank,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "batch_size": self.batch_size,
            "max_len": self.max_len,
            "seed": self.seed,
            "warmup_steps": self.warmup,
            "lora_targets": ",".join(self.targets),
            "threads": self.threads,
        }


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: the full sequence and its labels (``IGNORE`` outside the answer)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass
class TrainOutcome:
    """What a run produced: the merged model and how the loss went."""

    model: Any
    #: The trained LoRA matrices (peft names → float32 arrays), taken before merging.
    adapter: dict[str, Any] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    trainable_parameters: int = 0
    examples: int = 0


def load_gguf_model(path: Path) -> tuple[Any, Any]:
    """Model (float32) and tokenizer from a GGUF file, through transformers.

    Raises:
        ConfigurationError: the file is missing or transformers cannot read it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not path.is_file():
        raise ConfigurationError(f"GGUF model file not found: {path}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise ConfigurationError(f"transformers cannot load {path}: {exc}") from exc
    if tokenizer.chat_template is None:
        raise ConfigurationError(f"{path} has no chat template to format the training data")
    return model, tokenizer


def encode_example(tokenizer: Any, example: TrainingExample, max_len: int) -> Encoded | None:
    """Prompt + answer + end-of-turn as token ids; ``None`` when longer than ``max_len``."""
    prompt = tokenizer.apply_chat_template(
        list(example.messages), tokenize=False, add_generation_prompt=True
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer.strip(), add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    ids = [*prompt_ids, *answer_ids]
    if len(ids) > max_len:
        return None
    labels = [IGNORE] * len(prompt_ids) + answer_ids
    return Encoded(tuple(ids), tuple(labels))


def encode_all(
    tokenizer: Any, examples: Sequence[TrainingExample], max_len: int
) -> tuple[list[Encoded], int]:
    """Every example that fits in ``max_len`` tokens, and how many were too long."""
    encoded = [encode_example(tokenizer, e, max_len) for e in examples]
    kept = [e for e in encoded if e is not None]
    return kept, len(encoded) - len(kept)


def _batch(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors; padding is masked out of attention and loss."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = [list(e.input_ids) + [pad_id] * (width - len(e.input_ids)) for e in items]
    labels = [list(e.labels) + [IGNORE] * (width - len(e.labels)) for e in items]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in items]
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }


def _batches(data: Sequence[Encoded], size: int, steps: int, seed: int) -> list[list[Encoded]]:
    """``steps`` batches drawn epoch by epoch from a seeded shuffle (every example once per epoch)."""
    rng = random.Random(seed)
    order: list[int] = []
    batches: list[list[Encoded]] = []
    while len(batches) < steps:
        if len(order) < size:
            fresh = list(range(len(data)))
            rng.shuffle(fresh)
            order += fresh
        batches.append([data[i] for i in order[:size]])
        del order[:size]
    return batches


def _scheduler(optimizer: Any, settings: LoraSettings) -> Any:
    import torch

    warmup = min(settings.warmup, settings.steps - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.05, (settings.steps - step) / max(1, settings.steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_lora(
    model: Any,
    data: Sequence[Encoded],
    settings: LoraSettings,
    *,
    pad_id: int,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainOutcome:
    """Fit LoRA adapters for ``settings.steps`` steps, then merge them into the weights.

    ``on_step(step, loss)`` is called after every optimiser step (1-based), for progress and
    tracking. The returned model is a plain transformers model (no peft wrapper); the adapter
    matrices themselves are kept in :attr:`TrainOutcome.adapter` for the GGUF adapter export.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    if not data:
        raise InvalidRequestError("no training example fits in the maximum length")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.targets),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    scheduler = _scheduler(optimizer, settings)
    outcome = TrainOutcome(model=None, trainable_parameters=sum(p.numel() for p in params))
    outcome.examples = len(data)
    started = time.perf_counter()
    peft_model.train()
    batches = _batches(data, settings.batch_size, settings.steps, settings.seed)
    for step, items in enumerate(batches, start=1):
        loss = peft_model(**_batch(items, pad_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        outcome.losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, outcome.losses[-1])
    outcome.seconds = time.perf_counter() - started
    peft_model.eval()
    from genai_factory.mlops.training.adapter_export import lora_weights

    outcome.adapter = lora_weights(peft_model)
    outcome.model = peft_model.merge_and_unload()
    return outcome
