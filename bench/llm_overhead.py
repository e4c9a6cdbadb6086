"""Overhead of ``LlamaCppModel`` and of the HTTP service over raw llama-cpp-python.

Seven ways to generate from the same prompt with the same thread count, run in interleaved
rounds in one process (so machine noise hits all of them alike). Three chat rows, with the same
GGUF file:

* ``raw``: ``llama_cpp.Llama.create_chat_completion`` called directly (the anchor);
* ``model``: ``LlamaCppModel.chat`` (worker thread, option mapping, token accounting);
* ``service``: ``POST /v1/assistant/generate`` (mode ``chat``) on a uvicorn server on 127.0.0.1,
  timed by an HTTP client (validation, routing, JSON, the network stack included), without the
  adapter so that the row measures the service's own overhead.

The adapter changes what the model writes (it was trained to answer in one or two sentences, so
it stops after about 30 tokens where the bare model writes 128), and tokens/s over replies of
different lengths would mostly measure the length. The adapter rows therefore decode exactly
``--max-tokens`` tokens from the same prompt (``Llama.generate``, greedy, the end token not
honoured), each against ``bare``, the bundled model decoded the same way:

* ``bare``: the bundled model;
* ``adapter``: the shipped LoRA adapter as the service serves it (``llm.adapter`` ``default``,
  ``llm.adapter_merge`` true: folded into the weights once);
* ``per_token``: the same adapter applied by llama.cpp at every token (``adapter_merge`` false);
* ``sourced``: ``adapter`` with the decline shift's logits processor
  (:class:`~genai_factory.llm.llamacpp.FirstTokenShift`), as on the service's RAG route when a
  shift is set (the adapter's stored shift, or -0.75 when it stores none).

Each prints the median tokens/s over the rounds and its ratio to its anchor's median. Targets:
``model`` >= 0.95 and ``service`` >= 0.90 of ``raw``; ``adapter`` and ``sourced`` >= 0.90 of
``bare``.

The merged file is built before the rounds start (or taken from the merge cache), like the
service does at start-up.

    .venv/bin/python bench/llm_overhead.py [--rounds 7] [--max-tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import uvicorn

from genai_factory.config import Settings
from genai_factory.llm.llamacpp import (
    FirstTokenShift,
    LlamaCppModel,
    bundled_gguf_path,
    shipped_adapter_path,
)
from genai_factory.messages import ChatOptions, Message
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeEmbedder

QUERY = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SYSTEM = "You are GenAI Assistant, a concise and helpful assistant. Answer in a few sentences."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raw_runner(threads: int, max_tokens: int, n_ctx: int) -> Callable[[], tuple[int, float]]:
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(bundled_gguf_path()),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=False,
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUERY}]

    def run() -> tuple[int, float]:
        start = time.perf_counter()
        result = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=0.0,
            top_p=0.95,
            repeat_penalty=1.1,
            seed=0,
        )
        elapsed = time.perf_counter() - start
        return int(result["usage"]["completion_tokens"]), elapsed  # type: ignore[index]

    return run


def _model_runner(
    model: LlamaCppModel, loop: asyncio.AbstractEventLoop, max_tokens: int
) -> Callable[[], tuple[int, float]]:
    messages = [Message.system(SYSTEM), Message.user(QUERY)]
    options = ChatOptions(max_tokens=max_tokens, temperature=0.0, seed=0)

    def run() -> tuple[int, float]:
        start = time.perf_counter()
        response = loop.run_until_complete(model.chat(messages, options))
        return response.usage.completion_tokens, time.perf_counter() - start

    return run


def _decode_runner(
    model: LlamaCppModel, max_tokens: int, *, shift: float | None = None
) -> Callable[[], tuple[int, float]]:
    """Decode exactly ``max_tokens`` greedy tokens after the chat-formatted prompt."""
    from llama_cpp import LogitsProcessorList

    llama = model._load_blocking()
    text = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUERY}<|im_end|>\n"
    prompt = llama.tokenize(f"{text}<|im_start|>assistant\n".encode(), special=True)

    def run() -> tuple[int, float]:
        processors = None
        if shift is not None:
            decline = FirstTokenShift(model._decline_token_id(), shift)
            processors = LogitsProcessorList([decline])
        llama.reset()
        start = time.perf_counter()
        produced = 0
        for _ in llama.generate(
            prompt, temp=0.0, top_k=1, repeat_penalty=1.0, logits_processor=processors
        ):
            produced += 1
            if produced >= max_tokens:
                break
        return produced, time.perf_counter() - start

    return run


class _Service:
    """The real app on uvicorn in a background thread, with the embedded LLM."""

    def __init__(self, threads: int, n_ctx: int, data_dir: Path) -> None:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=data_dir,
            llm={"n_threads": threads, "n_ctx": n_ctx, "adapter": "none"},
            embeddings={"provider": "fake"},
            rag={"ingest_on_start": False},
            service={"system_prompt": SYSTEM},
        )
        app = create_app(settings, embedder=FakeEmbedder())
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Service:
        self.thread.start()
        deadline = time.monotonic() + 120
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def runner(self, max_tokens: int) -> Callable[[], tuple[int, float]]:
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=300)
        body = {"query": QUERY, "mode": "chat", "max_tokens": max_tokens}

        def run() -> tuple[int, float]:
            start = time.perf_counter()
            response = client.post("/v1/assistant/generate", json=body)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"]), elapsed

        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    model = LlamaCppModel(n_ctx=args.n_ctx, n_threads=args.threads, seed=0)
    adapted = LlamaCppModel(
        n_ctx=args.n_ctx, n_threads=args.threads, seed=0, adapter_path=shipped_adapter_path()
    )
    per_token = LlamaCppModel(
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        seed=0,
        adapter_path=shipped_adapter_path(),
        adapter_merge=False,
    )
    bare = LlamaCppModel(n_ctx=args.n_ctx, n_threads=args.threads, seed=0)
    # The shift's cost is a logits processor per token, whatever its value: an adapter storing
    # none is measured with the value `train calibrate` chose for the MLP adapter (docs/mlops.md).
    shift = adapted.decline_shift or -0.75
    for each in (model, adapted, per_token, bare):
        loop.run_until_complete(each.load())
    runners: dict[str, Callable[[], tuple[int, float]]] = {
        "raw": _raw_runner(args.threads, args.max_tokens, args.n_ctx),
        "model": _model_runner(model, loop, args.max_tokens),
        "bare": _decode_runner(bare, args.max_tokens),
        "adapter": _decode_runner(adapted, args.max_tokens),
        "per_token": _decode_runner(per_token, args.max_tokens),
        "sourced": _decode_runner(adapted, args.max_tokens, shift=shift),
    }
    rates: dict[str, list[float]] = {
        name: [] for name in ("raw", "model", "bare", "adapter", "per_token", "sourced", "service")
    }
    with (
        TemporaryDirectory() as data_dir,
        _Service(args.threads, args.n_ctx, Path(data_dir)) as svc,
    ):
        runners["service"] = svc.runner(args.max_tokens)
        for run in runners.values():  # warm-up: load weights, fill prompt caches
            run()
        for round_number in range(args.rounds):
            order = list(runners)
            shift = round_number % len(order)
            order = order[shift:] + order[:shift]  # rotate who goes first
            for name in order:
                tokens, elapsed = runners[name]()
                rates[name].append(tokens / elapsed)
    for each in (model, adapted, per_token, bare):
        loop.run_until_complete(each.aclose())
    loop.close()

    print(
        f"llm_overhead: {args.rounds} rounds, max_tokens={args.max_tokens}, threads={args.threads}"
    )
    for name, values in rates.items():
        anchor = "bare" if name in ("adapter", "per_token", "sourced") else "raw"
        median = statistics.median(values)
        ratio = median / statistics.median(rates[anchor])
        print(f"  {name:9s} median {median:7.1f} tokens/s   ratio to {anchor:4s} {ratio:.3f}")


if __name__ == "__main__":
    main()
