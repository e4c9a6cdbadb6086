"""A LoRA fine-tune served two ways by llama.cpp: as a GGUF adapter on its base, and merged (slow).

The LoRA matrices are random (a trained adapter would only be slower to get), large enough to
change the answers. The base the adapter is applied to is the bundled model exported to F16 without
training, so both sides compute with F16 weights: base + adapter must give the same greedy tokens
as the merged export, and different ones from the base alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name a large animal."]
NEW_TOKENS = 12


def _greedy(llm: object, tokenizer: object, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        messages, tokenize=False, add_generation_prompt=True
    )
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)  # type: ignore[attr-defined]
    served: list[int] = []
    for token in llm.generate(tokens, temp=0.0, top_k=1):  # type: ignore[attr-defined]
        served.append(int(token))
        if len(served) == NEW_TOKENS or token == llm.token_eos():  # type: ignore[attr-defined]
            break
    return served


def test_adapter_on_its_base_serves_the_merged_models_greedy_tokens(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    llama_cpp = pytest.importorskip("llama_cpp")
    peft = pytest.importorskip("peft")
    from genai_factory.llm.llamacpp import bundled_gguf_path
    from genai_factory.mlops.training.adapter_export import export_lora_gguf, lora_weights
    from genai_factory.mlops.training.gguf_export import export_gguf, torch_weights
    from genai_factory.mlops.training.lora import ATTENTION, load_gguf_model

    torch.set_num_threads(2)
    torch.manual_seed(0)
    original = bundled_gguf_path()
    model, tokenizer = load_gguf_model(original)
    base = export_gguf(torch_weights(model), original, tmp_path / "base.gguf").path
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=list(ATTENTION))
    lora = peft.get_peft_model(model, config)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    adapter = export_lora_gguf(lora_weights(lora), original, tmp_path / "adapter.gguf", alpha=16)
    assert adapter.matrices == 4 * 30 and adapter.rank == 8 and adapter.bytes < 5_000_000
    merged = export_gguf(torch_weights(lora.merge_and_unload()), original, tmp_path / "m.gguf")

    def served(path: Path, lora_path: Path | None = None) -> list[list[int]]:
        llm = llama_cpp.Llama(
            model_path=str(path),
            lora_path=str(lora_path) if lora_path else None,
            n_ctx=256,
            n_threads=2,
            verbose=False,
        )
        try:
            return [_greedy(llm, tokenizer, q) for q in PROMPTS]
        finally:
            llm.close()

    with_adapter = served(base, adapter.path)
    assert with_adapter == served(merged.path)
    assert with_adapter != served(base)
