"""The GGUF writer on a tiny Llama: metadata copied, names/order kept, Q/K permutation right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from genai_factory.exceptions import ConfigurationError  # noqa: E402
from genai_factory.mlops.training.gguf_export import (  # noqa: E402
    FILE_TYPE_F16,
    export_gguf,
    gguf_to_hf_names,
    permute_qk,
    torch_weights,
    unpermute_qk,
)

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
