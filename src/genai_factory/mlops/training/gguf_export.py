"""Write fine-tuned Llama weights back into a GGUF file that llama.cpp serves.

The original GGUF is the template: every metadata key (hyper-parameters, tokenizer, chat template)
is copied unchanged except the file type, and every tensor is written under its original name and
in its original order, so llama.cpp sees the same model with new weights. Matrices are stored as
F16 (a 135M model is ~270 MB then; quantizing again would blur what fine-tuning learnt) and 1-D
tensors (the RMS norms) as F32, as llama.cpp's own converter does.

llama.cpp stores the query and key projections with the rows of each head interleaved for its rotary
embedding (``permute`` in ``convert_hf_to_gguf.py``); transformers' GGUF loader undoes that on
load, so it is applied again here. :func:`permute_qk` and :func:`unpermute_qk` are inverses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.adapter_merge import copy_metadata

#: ``general.file_type`` of a GGUF whose matrices are F16 (llama.cpp's ``LLAMA_FTYPE_MOSTLY_F16``).
FILE_TYPE_F16 = 1

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class ExportInfo:
    """What :func:`export_gguf` wrote."""

    path: Path
    tensors: int
    bytes: int
    architecture: str


def permute_qk(weight: Array, n_head: int) -> Array:
    """Transformers' row order of a Q or K projection → llama.cpp's (``n_head``: its heads)."""
    rows = weight.shape[0]
    shaped = weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
    return shaped.swapaxes(1, 2).reshape(weight.shape)


def unpermute_qk(weight: Array, n_head: int) -> Array:
    """llama.cpp's row order of a Q or K projection → transformers' (inverse of ``permute_qk``)."""
    rows = weight.shape[0]
    shaped = weight.reshape(n_head, rows // n_head // 2, 2, *weight.shape[1:])
    return shaped.swapaxes(1, 2).reshape(weight.shape)


def _field_value(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return field.contents() if field is not None and field.types else None


def gguf_to_hf_names(hf_names: list[str], architecture: str, n_blocks: int) -> dict[str, str]:
    """GGUF tensor name → transformers parameter name, from gguf-py's own name tables."""
    import gguf

    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == architecture), None)
    if arch is None:
        raise ConfigurationError(f"gguf-py does not know the architecture {architecture!r}")
    table = gguf.get_tensor_name_map(arch, n_blocks)
    mapping: dict[str, str] = {}
    for hf_name in hf_names:
        base, _, suffix = hf_name.rpartition(".")
        gguf_base = table.get_name(base)
        if gguf_base is not None:
            mapping[f"{gguf_base}.{suffix}"] = hf_name
    return mapping


def _copy_metadata(reader: Any, writer: Any, name: str | None) -> None:
    copy_metadata(reader, writer, name=name, skip=("general.file_type",))
    writer.add_file_type(FILE_TYPE_F16)


def _heads(reader: Any, architecture: str) -> tuple[int, int]:
    n_head = _field_value(reader, f"{architecture}.attention.head_count")
    n_kv = _field_value(reader, f"{architecture}.attention.head_count_kv") or n_head
    if not isinstance(n_head, int) or not isinstance(n_kv, int):
        raise ConfigurationError("the template GGUF does not say how many attention heads it has")
    return n_head, n_kv


def _stored(gguf_name: str, weight: Array, n_head: int, n_kv: int) -> Array:
    """The array as llama.cpp stores it: Q/K rows permuted, F16 matrices, F32 vectors."""
    if ".attn_q." in gguf_name:
        weight = permute_qk(weight, n_head)
    elif ".attn_k." in gguf_name:
        weight = permute_qk(weight, n_kv)
    dtype = np.float16 if weight.ndim >= 2 else np.float32
    return np.ascontiguousarray(weight, dtype=dtype)


def export_gguf(
    weights: Mapping[str, Array],
    template: Path,
    out: Path,
    *,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportInfo:
    """Write ``weights`` (transformers names, float arrays) as a GGUF shaped like ``template``.

    Raises:
        ConfigurationError: the template is not a Llama GGUF, or a tensor of the template has no
            weight of the same shape in ``weights``.
    """
    import gguf

    reader = gguf.GGUFReader(template)
    architecture = _field_value(reader, "general.architecture")
    if architecture != "llama":
        raise ConfigurationError(
            f"only Llama-architecture GGUF files can be exported, not {architecture!r}"
        )
    n_blocks = _field_value(reader, f"{architecture}.block_count")
    n_head, n_kv = _heads(reader, architecture)
    names = gguf_to_hf_names(list(weights), architecture, int(n_blocks))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(partial, architecture)
    _copy_metadata(reader, writer, name)
    total = len(reader.tensors)
    for done, tensor in enumerate(reader.tensors, start=1):
        hf_name = names.get(tensor.name)
        if hf_name is None:
            raise ConfigurationError(f"no weight for the GGUF tensor {tensor.name}")
        weight = np.asarray(weights[hf_name])
        expected = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        if weight.shape != expected:
            raise ConfigurationError(
                f"{hf_name} has shape {weight.shape}, the template's {tensor.name} {expected}"
            )
        writer.add_tensor(tensor.name, _stored(tensor.name, weight, n_head, n_kv))
        if progress is not None:
            progress(done, total)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    partial.replace(out)
    return ExportInfo(out, total, out.stat().st_size, architecture)


def torch_weights(model: Any) -> dict[str, Array]:
    """A transformers model's parameters as float32 numpy arrays (tied weights included)."""
    return {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
