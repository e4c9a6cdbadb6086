"""``train llm``: LoRA on the served GGUF → GGUF adapter and merged F16 GGUF → MLflow → challenger.

One MLflow run holds everything needed to reproduce or audit the model: the hyper-parameters, the
SHA-256 of the training file, the seed, the base model, the git commit (tagged by
:func:`~genai_factory.mlops.tracking.tracked_run`), the loss of every step and the GGUF itself
(logged by :meth:`~genai_factory.mlops.registry.ModelRegistry.register`). Two files are written:
the LoRA adapter in llama.cpp's GGUF adapter format (a few MB, served on top of its base) and the
merged F16 model (for servers that take no adapter); ``register_as`` chooses which one becomes the
version (by default the adapter, tagged ``kind = lora_adapter`` with its base in ``base_ref``). The
new version gets the ``challenger`` alias; only an evaluation gate promotes it to ``champion``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from genai_factory.config import Settings
from genai_factory.mlops.training.data import file_sha256, read_examples
from genai_factory.mlops.training.lora import LoraSettings, encode_all, load_gguf_model, train_lora

#: File name of the exported model inside the output directory.
MODEL_FILE = "model.gguf"
#: File name of the exported LoRA adapter inside the output directory.
ADAPTER_FILE = "adapter.gguf"

RegisterAs = Literal["adapter", "merged"]


@dataclass
class LLMTrainingResult:
    """What ``train llm`` did (printed by the CLI, written to ``training.json``)."""

    gguf: str
    adapter: str
    adapter_bytes: int
    base: str
    data: str
    data_sha256: str
    examples: int
    skipped_too_long: int
    sources: dict[str, int]
    params: dict[str, Any]
    losses: list[float]
    train_seconds: float
    trainable_parameters: int
    run_id: str | None = None
    registered_version: int | None = None
    aliases: list[str] = field(default_factory=list)

    @property
    def first_loss(self) -> float:
        window = self.losses[: max(1, len(self.losses) // 10)]
        return sum(window) / len(window)

    @property
    def last_loss(self) -> float:
        window = self.losses[-max(1, len(self.losses) // 10) :]
        return sum(window) / len(window)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_loss": self.first_loss, "last_loss": self.last_loss}


@dataclass
class Hooks:
    """Progress callbacks of a run (the CLI draws bars with them; tests leave them empty)."""

    stage: Callable[[str], None] = lambda name: None
    step: Callable[[int, float], None] = lambda step, loss: None


def base_model_path(settings: Settings, ref: str) -> Path:
    """The GGUF to fine-tune: ``base`` (the bundled model), a registry alias/version, or a file.

    A registered LoRA adapter cannot be a base (train on its base instead).
    """
    from genai_factory.llm.llamacpp import bundled_gguf_path
    from genai_factory.mlops.registry import resolve_llm

    return resolve_llm(settings, ref) or bundled_gguf_path()


def pinned_base_ref(settings: Settings, ref: str) -> str:
    """``ref`` as recorded with an adapter: an alias becomes the version it names now."""
    ref = ref.strip() or "base"
    if ref == "base" or ref.isdigit() or ref.endswith(".gguf"):
        return str(Path(ref).expanduser().resolve()) if ref.endswith(".gguf") else ref
    from genai_factory.mlops.registry import _registered

    found = _registered(settings, ref)
    return str(found.version) if found is not None else ref


def default_out_dir(settings: Settings) -> Path:
    return settings.data_dir / "training" / f"llm-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def _train_and_export(
    base: Path, data: Path, lora: LoraSettings, out: Path, hooks: Hooks
) -> LLMTrainingResult:
    from genai_factory.mlops.training.adapter_export import export_lora_gguf
    from genai_factory.mlops.training.gguf_export import export_gguf, torch_weights

    examples = read_examples(data)
    hooks.stage("loading the base model")
    model, tokenizer = load_gguf_model(base)
    encoded, skipped = encode_all(tokenizer, examples, lora.max_len)
    hooks.stage("training")
    outcome = train_lora(model, encoded, lora, pad_id=tokenizer.eos_token_id, on_step=hooks.step)
    hooks.stage("exporting GGUF")
    adapter = export_lora_gguf(
        outcome.adapter, base, out / ADAPTER_FILE, alpha=lora.alpha, name="genai-llm-lora"
    )
    gguf = export_gguf(torch_weights(outcome.model), base, out / MODEL_FILE, name="genai-llm")
    sources: dict[str, int] = {}
    for example in examples:
        sources[example.source] = sources.get(example.source, 0) + 1
    return LLMTrainingResult(
        gguf=str(gguf.path),
        adapter=str(adapter.path),
        adapter_bytes=adapter.bytes,
        base=str(base),
        data=str(data),
        data_sha256=file_sha256(data),
        examples=outcome.examples,
        skipped_too_long=skipped,
        sources=sources,
        params=lora.as_params(),
        losses=outcome.losses,
        train_seconds=round(outcome.seconds, 1),
        trainable_parameters=outcome.trainable_parameters,
    )


def train_llm(
    settings: Settings,
    data: Path,
    lora: LoraSettings,
    *,
    base_ref: str = "base",
    out: Path | None = None,
    register: bool = True,
    register_as: RegisterAs = "adapter",
    hooks: Hooks | None = None,
    model_name: str | None = None,
) -> LLMTrainingResult:
    """Fine-tune, export, track in MLflow and (unless ``register=False``) register a challenger.

    ``register_as``: ``adapter`` registers the LoRA adapter (with its base recorded), ``merged``
    the merged F16 model. ``model_name``: the registered model (default ``mlops.llm_name``; the
    agent's adapters go to ``mlops.agent_llm_name``).
    """
    from genai_factory.mlops.registry import (
        ADAPTER_KIND,
        BASE_REF_TAG,
        KIND_TAG,
        ModelRegistry,
    )
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    hooks = hooks or Hooks()
    base = base_model_path(settings, base_ref)
    pinned = pinned_base_ref(settings, base_ref)
    read_examples(data)  # fail on bad input before MLflow opens a run
    out = out or default_out_dir(settings)
    mlflow = import_mlflow()
    tags = {"base_model": base.name, "data_sha256": file_sha256(data)}
    with tracked_run(settings, "train-llm", job="train_llm", tags=tags) as run:
        mlflow.log_params(
            {
                **lora.as_params(),
                "base_ref": base_ref,
                "data": str(data),
                "register_as": register_as,
            }
        )

        def step(index: int, loss: float) -> None:
            mlflow.log_metric("loss", loss, step=index)
            hooks.step(index, loss)

        result = _train_and_export(base, data, lora, out, Hooks(hooks.stage, step))
        result.run_id = str(run.info.run_id)
        mlflow.log_params(
            {"examples": result.examples, "skipped_too_long": result.skipped_too_long}
        )
        mlflow.log_metrics(
            {
                "first_loss": result.first_loss,
                "last_loss": result.last_loss,
                "train_seconds": result.train_seconds,
                "trainable_parameters": float(result.trainable_parameters),
            }
        )
        mlflow.log_dict(result.as_dict(), "training.json")
        if register:
            hooks.stage("registering")
            tags = {"base_model": base.name, "data_sha256": result.data_sha256}
            if register_as == "adapter":
                tags |= {KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: pinned}
            version = ModelRegistry(settings).register(
                model_name or settings.mlops.llm_name,
                Path(result.adapter if register_as == "adapter" else result.gguf),
                run_id=result.run_id,
                tags=tags,
                description=(
                    f"LoRA r={lora.rank} on {Path(data).name}, {lora.steps} steps"
                    + (f" (adapter on {pinned})" if register_as == "adapter" else " (merged)")
                ),
            )
            result.registered_version = version.version
            result.aliases = list(version.aliases)
    (out / "training.json").write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
    return result
