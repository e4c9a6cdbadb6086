"""The GGUF writers on a tiny Llama: metadata copied, names/order kept, Q/K permutation right; the
LoRA adapter in llama.cpp's adapter layout, applying the same update as the merged export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from genai_factory.exceptions import ConfigurationError  # noqa: E402
from genai_factory.mlops.training.adapter_export import (  # noqa: E402
    export_lora_gguf,
    lora_weights,
    pair_lora,
    read_adapter_alpha,
)
from genai_factory.mlops.training.gguf_export import (  # noqa: E402
    FILE_TYPE_F16,
    export_gguf,
    gguf_to_hf_names,
    permute_qk,
    torch_weights,
    unpermute_qk,
)
from genai_factory.mlops.training.lora import ATTENTION  # noqa: E402

peft = pytest.importorskip("peft")

VOCAB, HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 32, 32, 64, 2, 4, 2
TEMPLATE_ORDER = [
    "attn_norm",
    "ffn_down",
    "ffn_gate",
    "ffn_up",
    "ffn_norm",
    "attn_k",
    "attn_output",
    "attn_q",
    "attn_v",
]


def tiny_llama(seed: int) -> object:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        initializer_range=0.2,
    )
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():  # norms are ones at init: make them distinct so a mix-up shows
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    return model


def write_template(path: Path, model: object) -> Path:
    """A small Q4-free 'original' GGUF, laid out like llama.cpp's converter lays one out."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny original")
    writer.add_block_count(LAYERS)
    writer.add_context_length(64)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_vocab_size(VOCAB)
    writer.add_file_type(2)  # pretend it was quantized
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i}" for i in range(VOCAB)])
    writer.add_token_types([1] * VOCAB)
    writer.add_chat_template("{{ messages }}")
    weights = torch_weights(model)
    names = {v: k for k, v in gguf_to_hf_names(list(weights), "llama", LAYERS).items()}
    order = ["token_embd.weight"] + [
        f"blk.{i}.{part}.weight" for i in range(LAYERS) for part in TEMPLATE_ORDER
    ]
    order.append("output_norm.weight")
    by_gguf = {names[k]: v for k, v in weights.items() if k in names}
    for name in order:
        array = by_gguf[name]
        if ".attn_q." in name:
            array = permute_qk(array, HEADS)
        elif ".attn_k." in name:
            array = permute_qk(array, KV_HEADS)
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_permutation_round_trips() -> None:
    weight = np.arange(8 * 3 * 5, dtype=np.float32).reshape(24, 5)
    for heads in (1, 3, 6):
        assert np.array_equal(unpermute_qk(permute_qk(weight, heads), heads), weight)
    assert not np.array_equal(permute_qk(weight, 3), weight)


def test_export_keeps_metadata_names_and_order(tmp_path: Path) -> None:
    template = write_template(tmp_path / "original.gguf", tiny_llama(0))
    tuned = tiny_llama(1)
    info = export_gguf(torch_weights(tuned), template, tmp_path / "tuned.gguf", name="tuned")
    original, exported = gguf.GGUFReader(template), gguf.GGUFReader(info.path)
    assert [t.name for t in exported.tensors] == [t.name for t in original.tensors]
    assert exported.fields["general.file_type"].contents() == FILE_TYPE_F16
    assert exported.fields["general.name"].contents() == "tuned"
    for key in (
        "tokenizer.ggml.tokens",
        "tokenizer.chat_template",
        "llama.attention.head_count_kv",
    ):
        assert exported.fields[key].contents() == original.fields[key].contents()
    types = {t.name: t.tensor_type for t in exported.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    state = tuned.state_dict()
    stored = {t.name: np.asarray(t.data, dtype=np.float32) for t in exported.tensors}
    for layer in range(LAYERS):
        q = unpermute_qk(stored[f"blk.{layer}.attn_q.weight"], HEADS)
        k = unpermute_qk(stored[f"blk.{layer}.attn_k.weight"], KV_HEADS)
        prefix = f"model.layers.{layer}.self_attn"
        np.testing.assert_allclose(q, state[f"{prefix}.q_proj.weight"].numpy(), atol=2e-3)
        np.testing.assert_allclose(k, state[f"{prefix}.k_proj.weight"].numpy(), atol=2e-3)
    np.testing.assert_allclose(
        stored["output_norm.weight"], state["model.norm.weight"].numpy(), atol=1e-7
    )


def test_transformers_reads_the_export_as_the_same_model(tmp_path: Path) -> None:
    """transformers' GGUF loader (which un-permutes Q/K itself) gives back the same logits."""
    template = write_template(tmp_path / "original.gguf", tiny_llama(0))
    tuned = tiny_llama(2)
    export_gguf(torch_weights(tuned), template, tmp_path / "tuned.gguf")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path), gguf_file="tuned.gguf", dtype=torch.float32
    )
    ids = torch.tensor([[1, 5, 7, 9, 11, 3, 30, 2]])
    with torch.no_grad():
        expected = tuned(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=5e-2), (got - expected).abs().max()
    # a wrong permutation would not be a small rounding difference
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_export_refuses_mismatched_weights(tmp_path: Path) -> None:
    template = write_template(tmp_path / "original.gguf", tiny_llama(0))
    weights = torch_weights(tiny_llama(1))
    del weights["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ConfigurationError, match="no weight"):
        export_gguf(weights, template, tmp_path / "x.gguf")
    weights = torch_weights(tiny_llama(1))
    weights["model.norm.weight"] = np.ones(HIDDEN + 1, dtype=np.float32)
    with pytest.raises(ConfigurationError, match="shape"):
        export_gguf(weights, template, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


RANK, ALPHA = 4, 8


def _lora(seed: int) -> object:
    model = tiny_llama(0)
    config = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(ATTENTION))
    adapted = peft.get_peft_model(model, config)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.1)
    return adapted


def _stored(path: Path) -> dict[str, np.ndarray]:
    return {t.name: np.asarray(t.data, dtype=np.float32) for t in gguf.GGUFReader(path).tensors}


def test_adapter_has_llama_cpp_layout(tmp_path: Path) -> None:
    template = write_template(tmp_path / "base.gguf", tiny_llama(0))
    info = export_lora_gguf(
        lora_weights(_lora(1)), template, tmp_path / "adapter.gguf", alpha=ALPHA, name="a"
    )
    reader = gguf.GGUFReader(info.path)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(ALPHA)
    assert read_adapter_alpha(info.path) == pytest.approx(ALPHA)
    assert read_adapter_alpha(template) is None  # a model, not an adapter
    names = {t.name for t in reader.tensors}
    assert len(names) == 2 * 4 * LAYERS and info.matrices == 4 * LAYERS and info.rank == RANK
    assert {"blk.0.attn_q.weight.lora_a", "blk.1.attn_output.weight.lora_b"} <= names
    # numpy order: lora_a is (rank, inputs), lora_b is (outputs, rank)
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
    assert shapes["blk.0.attn_k.weight.lora_a"] == (RANK, 32)
    assert shapes["blk.0.attn_k.weight.lora_b"] == (32 // HEADS * KV_HEADS, RANK)


def test_adapter_update_equals_the_merged_export(tmp_path: Path) -> None:
    """base + alpha/rank · B·A over the stored tensors is what the merged F16 export stores."""
    template = write_template(tmp_path / "base.gguf", tiny_llama(0))
    adapted = _lora(2)
    adapter = export_lora_gguf(lora_weights(adapted), template, tmp_path / "a.gguf", alpha=ALPHA)
    base = export_gguf(torch_weights(tiny_llama(0)), template, tmp_path / "b.gguf").path
    merged = export_gguf(torch_weights(adapted.merge_and_unload()), template, tmp_path / "m.gguf")
    lora, plain, full = _stored(adapter.path), _stored(base), _stored(merged.path)
    for layer in range(LAYERS):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            name = f"blk.{layer}.{part}.weight"
            update = (ALPHA / RANK) * lora[f"{name}.lora_b"] @ lora[f"{name}.lora_a"]
            assert np.abs(update).max() > 1e-3  # the adapter changes something
            np.testing.assert_allclose(plain[name] + update, full[name], atol=2e-3)


def test_pairing_refuses_incomplete_adapters() -> None:
    a = np.zeros((2, 4), dtype=np.float32)
    b = np.zeros((4, 2), dtype=np.float32)
    name = "base_model.model.model.layers.0.self_attn.q_proj"
    pairs = pair_lora({f"{name}.lora_A.default.weight": a, f"{name}.lora_B.default.weight": b})
    assert list(pairs) == ["model.layers.0.self_attn.q_proj.weight"]
    with pytest.raises(ConfigurationError, match="only lora_A"):
        pair_lora({f"{name}.lora_A.weight": a})
    with pytest.raises(ConfigurationError, match="do not fit"):
        pair_lora({f"{name}.lora_A.weight": a, f"{name}.lora_B.weight": b.T})
    with pytest.raises(ConfigurationError, match="not a LoRA"):
        pair_lora({"model.norm.weight": a})
