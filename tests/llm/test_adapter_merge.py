"""Folding a LoRA adapter into its base: the merged file's tensors and metadata, the merge cache,
and the fallback to a per-token adapter (no model is run here; the greedy-token comparison of both
ways to serve is in tests/mlops/test_adapter_real_model.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.adapter_merge import merge_adapter, merged_model_path
from genai_factory.llm.llamacpp import LlamaCppModel, bundled_gguf_path, shipped_adapter_path

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    adapter = shipped_adapter_path()
    assert adapter is not None
    out = tmp_path_factory.mktemp("merge") / "merged.gguf"
    info = merge_adapter(bundled_gguf_path(), adapter, out)
    assert info.merged == 4 * 30 and info.tensors == 272 and out.is_file()
    return out


def _tensors(path: Path) -> dict[str, Any]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def test_adapted_matrices_hold_base_plus_the_low_rank_update(merged: Path) -> None:
    base, out = _tensors(bundled_gguf_path()), _tensors(merged)
    lora = gguf.GGUFReader(shipped_adapter_path())
    alpha = float(lora.fields["adapter.lora.alpha"].contents())
    pairs = {t.name: t for t in lora.tensors}
    assert list(out) == list(base)  # same tensors, same order
    name = "blk.7.attn_v.weight"
    a = np.asarray(pairs[name + ".lora_a"].data, dtype=np.float32)
    b = np.asarray(pairs[name + ".lora_b"].data, dtype=np.float32)
    expected = gguf.quants.dequantize(base[name].data, base[name].tensor_type) + (
        alpha / a.shape[0]
    ) * (b @ a)
    assert out[name].tensor_type == gguf.GGMLQuantizationType.Q8_0
    got = gguf.quants.dequantize(out[name].data, out[name].tensor_type)
    # Q8_0 rounding only: each block of 32 stores round(x / d), d = max |x| / 127 kept as F16.
    blocks = expected.reshape(-1, 32)
    step = np.abs(blocks).max(axis=1, keepdims=True) / 127
    assert (np.abs(got.reshape(-1, 32) - blocks) <= 0.6 * step + 1e-7).all()
    # The update is in the weights: a Q4_1 re-quantization would have rounded most of it away.
    before = gguf.quants.dequantize(base[name].data, base[name].tensor_type)
    assert np.abs(got - before).mean() > 0.5 * np.abs(expected - before).mean()


def test_f16_merge_keeps_the_update_to_half_precision(tmp_path: Path) -> None:
    adapter = shipped_adapter_path()
    assert adapter is not None
    out = tmp_path / "f16.gguf"
    merge_adapter(bundled_gguf_path(), adapter, out, weight_type="F16")
    merged_q8 = merge_adapter(bundled_gguf_path(), adapter, tmp_path / "q8.gguf")
    f16, q8 = _tensors(out), _tensors(merged_q8.path)
    name = "blk.2.attn_q.weight"
    assert f16[name].tensor_type == gguf.GGMLQuantizationType.F16
    wide = np.asarray(f16[name].data, dtype=np.float32)
    narrow = gguf.quants.dequantize(q8[name].data, q8[name].tensor_type)
    assert 0 < np.abs(wide - narrow).max() < 0.01 * np.abs(wide).max()
    assert out.stat().st_size > merged_q8.bytes  # two bytes a weight against 34 per 32


def test_other_tensors_and_metadata_are_copied_unchanged(merged: Path) -> None:
    base, out = _tensors(bundled_gguf_path()), _tensors(merged)
    for name in ("token_embd.weight", "blk.3.ffn_up.weight", "output_norm.weight"):
        assert out[name].tensor_type == base[name].tensor_type
        assert np.array_equal(np.asarray(out[name].data), np.asarray(base[name].data))
    old, new = gguf.GGUFReader(bundled_gguf_path()), gguf.GGUFReader(merged)
    for key in ("tokenizer.chat_template", "llama.block_count", "general.file_type"):
        assert new.fields[key].contents() == old.fields[key].contents()
    assert (
        new.fields["tokenizer.ggml.tokens"].contents()
        == old.fields["tokenizer.ggml.tokens"].contents()
    )


def test_merge_is_cached_by_content_and_scale(tmp_path: Path) -> None:
    adapter = shipped_adapter_path()
    assert adapter is not None
    first = merged_model_path(bundled_gguf_path(), adapter, cache_dir=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert merged_model_path(bundled_gguf_path(), adapter, cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    half = merged_model_path(bundled_gguf_path(), adapter, scale=0.5, cache_dir=tmp_path)
    assert half != first and half.is_file()
    changed = tmp_path / "changed.gguf"
    changed.write_bytes(adapter.read_bytes())
    assert merged_model_path(bundled_gguf_path(), changed, cache_dir=tmp_path) != first
    assert not list(tmp_path.glob("*.partial"))  # nothing half-written left behind


def test_an_adapter_for_another_model_is_refused(tmp_path: Path) -> None:
    adapter = shipped_adapter_path()
    assert adapter is not None
    lora = gguf.GGUFReader(adapter)
    writer = gguf.GGUFWriter(tmp_path / "alien.gguf", "llama")
    writer.add_type("adapter")
    writer.add_float32("adapter.lora.alpha", 16.0)
    for t in lora.tensors[:2]:
        writer.add_tensor(t.name.replace("blk.0", "blk.99"), np.asarray(t.data, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ConfigurationError, match="does not fit"):
        merge_adapter(bundled_gguf_path(), tmp_path / "alien.gguf", tmp_path / "out.gguf")
    assert not list(tmp_path.glob("out.gguf*"))


def _fake_llama(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    class FakeLlama:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

    monkeypatch.setattr("llama_cpp.Llama", FakeLlama)
    return seen


def test_the_model_loads_the_merged_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENAI_MERGE_CACHE", str(tmp_path))
    seen = _fake_llama(monkeypatch)
    model = LlamaCppModel(adapter_path=shipped_adapter_path())
    model._load_blocking()
    assert seen["lora_path"] is None
    assert Path(seen["model_path"]).parent == tmp_path
    assert model.loaded_path == Path(seen["model_path"])


def test_an_unwritable_cache_falls_back_to_the_per_token_adapter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GENAI_MERGE_CACHE", str(blocker / "merged"))
    seen = _fake_llama(monkeypatch)
    model = LlamaCppModel(adapter_path=shipped_adapter_path())
    model._load_blocking()
    assert seen["lora_path"] == str(shipped_adapter_path())
    assert seen["model_path"] == str(bundled_gguf_path())


def test_merging_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_llama(monkeypatch)
    LlamaCppModel(adapter_path=shipped_adapter_path(), adapter_merge=False)._load_blocking()
    assert seen["lora_path"] == str(shipped_adapter_path())


@pytest.mark.slow
def test_merged_and_per_token_adapter_answer_alike(tmp_path: Path) -> None:
    """The merge changes the numbers only by rounding: greedy answers to RAG-style prompts are
    mostly the same, and none is the bare model's."""
    import json

    from genai_factory.messages import ChatOptions, Message

    dataset = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "squad_v2" / "qa.jsonl"
    if not dataset.is_file():
        pytest.skip("the shared SQuAD rows are not beside this checkout")
    with dataset.open() as f:
        rows = [json.loads(line) for _, line in zip(range(400), f, strict=False)][::40]
    adapter = shipped_adapter_path()
    merged = merged_model_path(bundled_gguf_path(), adapter, cache_dir=tmp_path)  # type: ignore[arg-type]
    models = {
        "per_token": LlamaCppModel(adapter_path=adapter, adapter_merge=False),
        "merged": LlamaCppModel(merged),
        "bare": LlamaCppModel(),
    }
    options = ChatOptions(max_tokens=32, temperature=0.0)
    answers: dict[str, list[str]] = {name: [] for name in models}
    for row in rows:
        prompt = [
            Message(
                role="user",
                content=f"Sources:\n[1] {row['context']}\n\nQuestion: {row['question']}",
            )
        ]
        for name, model in models.items():
            answers[name].append(model._chat_blocking(prompt, options).text)
    for model in models.values():
        model._llama.close()
    same = sum(a == b for a, b in zip(answers["per_token"], answers["merged"], strict=True))
    assert same >= len(rows) - 3, answers
    assert not any(a == b for a, b in zip(answers["bare"], answers["merged"], strict=True))


def test_an_unknown_weight_type_is_a_clear_error(tmp_path: Path) -> None:
    adapter = shipped_adapter_path()
    assert adapter is not None
    with pytest.raises(ConfigurationError, match="unknown GGML type"):
        merge_adapter(bundled_gguf_path(), adapter, tmp_path / "out.gguf", weight_type="Q9_9")
    assert not list(tmp_path.iterdir())
