"""The bundled SmolLM2 through transformers and back to GGUF, served by llama.cpp (slow).

The original file is Q4_1; the export holds the same (de-quantized) weights as F16, so llama.cpp's
arithmetic differs slightly from the original's (Q4_1 kernels quantize activations too). The
reference for "the same model" is therefore transformers running the weights it exported: greedy
decoding by llama.cpp on the exported file must give the same tokens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name a large animal.", "Say hello in one word."]
NEW_TOKENS = 8


def test_untrained_round_trip_serves_the_same_greedy_answers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    llama_cpp = pytest.importorskip("llama_cpp")
    from genai_factory.llm.llamacpp import bundled_gguf_path
    from genai_factory.mlops.training.gguf_export import export_gguf, torch_weights
    from genai_factory.mlops.training.lora import load_gguf_model

    torch.set_num_threads(2)
    original = bundled_gguf_path()
    model, tokenizer = load_gguf_model(original)
    exported = export_gguf(torch_weights(model), original, tmp_path / "round.gguf").path
    llm = llama_cpp.Llama(model_path=str(exported), n_ctx=256, n_threads=2, verbose=False)
    for question in PROMPTS:
        messages = [{"role": "user", "content": question}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)
        expected = generated[0, ids.shape[1] :].tolist()
        served: list[int] = []
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        assert tokens == ids[0].tolist()  # both sides see the same prompt tokens
        for token in llm.generate(tokens, temp=0.0, top_k=1):
            served.append(int(token))
            if len(served) == len(expected) or token == llm.token_eos():
                break
        assert served == expected[: len(served)] and served, (question, served, expected)
