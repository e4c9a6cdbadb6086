"""Fold a GGUF LoRA adapter into its base model's weights once, so serving it costs nothing.

llama.cpp applies an adapter at every token as two extra low-rank products (and a scale and an
add) per adapted matrix; for the bundled 135M model that is 480 extra graph operations a token and
about a fifth of the generation speed. Merging ``W + scale · alpha / rank · B · A`` into the base
weights removes that cost: the merged file has exactly the base's graph.

The base's quantized matrices cannot take the merge in their own format: a LoRA delta is mostly
smaller than half a Q4 step, so re-quantizing to Q4 would round most of it away. The adapted
matrices are therefore stored as Q8_0 by default (``weight_type``; F32 when the base's are F32),
which keeps the update and serves as fast as the base's Q4_1 on CPU, where F16 keeps it too but
costs about a tenth of the generation speed (``bench/llm_overhead.py``, docs/mlops.md). Every
other tensor is copied byte for byte, and the metadata unchanged (tokenizer, chat template, file
type). Greedy answers are not always token for token those of the per-token adapter: llama.cpp
rounds the activations differently for a merged matrix than for a Q4_1 one plus an F32
low-rank product, and a 135M model's near ties flip.

:func:`merged_model_path` keeps the result in a cache directory keyed by the content of the base,
the adapter and the scale, so the merge runs once per combination (about four seconds for the
bundled model) and later loads reuse the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from genai_factory.exceptions import ConfigurationError

log = structlog.get_logger(__name__)

#: Metadata the writer sets itself, or that is the reader's own bookkeeping (``GGUF.*``).
_WRITER_KEYS = ("general.architecture", "general.alignment")
#: ``adapter.lora.alpha`` (``gguf.Keys.Adapter.LORA_ALPHA``).
LORA_ALPHA_KEY = "adapter.lora.alpha"
#: Bumped when the merged file's layout changes, so stale cache entries are not reused.
MERGE_FORMAT = "3"


@dataclass(frozen=True)
class MergeInfo:
    """What :func:`merge_adapter` wrote."""

    path: Path
    merged: int
    tensors: int
    bytes: int


def copy_metadata(
    reader: Any,
    writer: Any,
    *,
    name: str | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """Copy every metadata key of ``reader`` into ``writer`` (``general.name`` → ``name`` if
    given), except the writer's own keys and ``skip``."""
    import gguf

    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in _WRITER_KEYS or key in skip or not field.types:
            continue
        vtype = field.types[0]
        sub_type = None
        if vtype == gguf.GGUFValueType.ARRAY:
            if len(field.types) != 2:
                raise ConfigurationError(f"nested GGUF arrays are not supported ({key})")
            sub_type = field.types[1]
        value = field.contents()
        if key == "general.name" and name:
            value = name
        writer.add_key_value(key, value, vtype, sub_type=sub_type)


def _lora_pairs(adapter: Any) -> tuple[dict[str, tuple[Any, Any]], float | None]:
    tensors = {t.name: t for t in adapter.tensors}
    pairs: dict[str, tuple[Any, Any]] = {}
    for name, tensor in tensors.items():
        if name.endswith(".lora_a"):
            base = name[: -len(".lora_a")]
            b = tensors.get(base + ".lora_b")
            if b is None:
                raise ConfigurationError(f"the adapter has {name} but no {base}.lora_b")
            pairs[base] = (tensor, b)
    field = adapter.fields.get(LORA_ALPHA_KEY)
    alpha = float(field.contents()) if field is not None and field.types else None
    return pairs, alpha


def _as_float(tensor: Any) -> np.ndarray[Any, Any]:
    """A reader tensor as float32 in numpy order (rows = outputs)."""
    import gguf

    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)


def merge_adapter(
    base: Path,
    adapter: Path,
    out: Path,
    *,
    scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    weight_type: str = "Q8_0",
) -> MergeInfo:
    """Write ``base`` with ``adapter`` folded into its weights to ``out`` (atomically).

    ``weight_type`` is the GGML type of the merged matrices (``Q8_0``, ``F16``, or another type
    gguf can quantize to; F32 matrices stay F32).

    Raises:
        ConfigurationError: ``adapter`` is not a LoRA adapter for ``base`` (an adapted tensor
            missing from the base, or of another shape).
    """
    import gguf

    if weight_type not in gguf.GGMLQuantizationType.__members__:
        raise ConfigurationError(f"unknown GGML type for merged matrices: {weight_type}")
    reader = gguf.GGUFReader(base)
    lora = gguf.GGUFReader(adapter)
    pairs, alpha = _lora_pairs(lora)
    if not pairs:
        raise ConfigurationError(f"{adapter} holds no LoRA matrices")
    arch_field = reader.fields.get("general.architecture")
    architecture = str(arch_field.contents()) if arch_field is not None else "llama"
    names = {t.name for t in reader.tensors}
    missing = sorted(set(pairs) - names)
    if missing:
        raise ConfigurationError(
            f"the adapter {adapter.name} does not fit {base.name}: it adapts {missing[0]}, "
            "which the model does not have"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".partial", dir=out.parent)
    os.close(fd)
    partial = Path(tmp)
    writer = gguf.GGUFWriter(partial, architecture)
    merged = 0
    try:
        copy_metadata(reader, writer)
        total = len(reader.tensors)
        for done, tensor in enumerate(reader.tensors, start=1):
            pair = pairs.get(tensor.name)
            if pair is None:
                writer.add_tensor(
                    tensor.name,
                    tensor.data,
                    raw_shape=tensor.data.shape,
                    raw_dtype=tensor.tensor_type,
                )
            else:
                a, b = (np.asarray(t.data, dtype=np.float32) for t in pair)
                rank = a.shape[0]
                factor = scale * ((alpha / rank) if alpha else 1.0)
                weight = _as_float(tensor)
                delta = factor * (b @ a)
                if delta.shape != weight.shape:
                    raise ConfigurationError(
                        f"the adapter's {tensor.name} is {delta.shape}, the model's {weight.shape}"
                    )
                weight = weight + delta
                _add_merged(writer, tensor, weight, weight_type)
                merged += 1
            if progress is not None:
                progress(done, total)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        partial.replace(out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return MergeInfo(out, merged, total, out.stat().st_size)


def _add_merged(writer: Any, tensor: Any, weight: np.ndarray[Any, Any], weight_type: str) -> None:
    import gguf

    if tensor.tensor_type == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(tensor.name, weight.astype(np.float32))
    elif weight_type == "F16":
        writer.add_tensor(tensor.name, weight.astype(np.float16))
    else:
        qtype = gguf.GGMLQuantizationType[weight_type]
        data = gguf.quants.quantize(weight.astype(np.float32), qtype)
        writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=qtype)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def merge_cache_dir() -> Path:
    """Where merged models are kept: ``$GENAI_MERGE_CACHE``, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/genai-factory/merged``."""
    explicit = os.environ.get("GENAI_MERGE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root).expanduser() / "genai-factory" / "merged"


def merged_model_path(
    base: Path, adapter: Path, *, scale: float = 1.0, cache_dir: Path | None = None
) -> Path:
    """The merged model of ``base`` + ``adapter`` at ``scale``, built on first use.

    The file name is a hash of both files' contents and the scale, so a changed adapter (a new
    champion, a rebuilt shipped adapter) never reuses a stale merge.
    """
    directory = cache_dir or merge_cache_dir()
    key = hashlib.sha256(
        f"{MERGE_FORMAT}:{_digest(base)}:{_digest(adapter)}:{scale!r}".encode()
    ).hexdigest()[:24]
    out = directory / f"{base.stem}+{adapter.stem}-{key}.gguf"
    if out.is_file():
        return out
    info = merge_adapter(base, adapter, out, scale=scale)
    log.info(
        "adapter_merged",
        base=str(base),
        adapter=str(adapter),
        path=str(out),
        matrices=info.merged,
        bytes=info.bytes,
    )
    return out
