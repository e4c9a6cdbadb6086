"""Overhead of ``LlamaCppModel`` and of the HTTP service over raw llama-cpp-python.

Four ways to generate from the same prompt with the same GGUF file and thread count, run in
interleaved rounds in one process (so machine noise hits all of them alike):

* ``raw``: ``llama_cpp.Llama.create_chat_completion`` called directly (the anchor);
* ``model``: ``LlamaCppModel.chat`` (worker thread, option mapping, token accounting);
* ``adapter``: ``LlamaCppModel.chat`` with the shipped LoRA adapter as the service serves it
  (``llm.adapter`` ``default``, ``llm.adapter_merge`` true: folded into the weights once);
* ``per_token``: the same adapter applied by llama.cpp at every token (``adapter_merge`` false);
* ``sourced``: the ``adapter`` model asked for an answer from sources
  (``ChatOptions.answer_from_sources``), so a decline shift runs as a logits processor, as on
  the service's RAG route (the adapter's stored shift, or -0.75 when it stores none);
* ``service``: ``POST /v1/assistant/generate`` (mode ``chat``) on a uvicorn server on 127.0.0.1,
  timed by an HTTP client (validation, routing, JSON, the network stack included), without the
  adapter so that the row measures the service's own overhead.

Each prints the median tokens/s over the rounds and its ratio to the anchor's median (and the
adapter's ratio to ``model``). Targets: ``model`` >= 0.95, ``service`` >= 0.90, ``adapter`` and
``sourced`` >= 0.90 of ``model``.

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
from genai_factory.llm.llamacpp import LlamaCppModel, bundled_gguf_path, shipped_adapter_path
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
    model: LlamaCppModel,
    loop: asyncio.AbstractEventLoop,
    max_tokens: int,
    *,
    from_sources: bool = False,
) -> Callable[[], tuple[int, float]]:
    messages = [Message.system(SYSTEM), Message.user(QUERY)]
    options = ChatOptions(
        max_tokens=max_tokens, temperature=0.0, seed=0, answer_from_sources=from_sources
    )

    def run() -> tuple[int, float]:
        start = time.perf_counter()
        response = loop.run_until_complete(model.chat(messages, options))
        return response.usage.completion_tokens, time.perf_counter() - start

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
    # The shift's cost is a logits processor per token, whatever its value: an adapter storing
    # none is measured with the value `train calibrate` chose for the MLP adapter (docs/mlops.md).
    adapted.decline_shift = adapted.decline_shift or -0.75
    for each in (model, adapted, per_token):
        loop.run_until_complete(each.load())
    runners: dict[str, Callable[[], tuple[int, float]]] = {
        "raw": _raw_runner(args.threads, args.max_tokens, args.n_ctx),
        "model": _model_runner(model, loop, args.max_tokens),
        "adapter": _model_runner(adapted, loop, args.max_tokens),
        "per_token": _model_runner(per_token, loop, args.max_tokens),
        "sourced": _model_runner(adapted, loop, args.max_tokens, from_sources=True),
    }
    rates: dict[str, list[float]] = {
        name: [] for name in ("raw", "model", "adapter", "per_token", "sourced", "service")
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
    for each in (model, adapted, per_token):
        loop.run_until_complete(each.aclose())
    loop.close()

    anchor = statistics.median(rates["raw"])
    print(
        f"llm_overhead: {args.rounds} rounds, max_tokens={args.max_tokens}, threads={args.threads}"
    )
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:9s} median {median:7.1f} tokens/s   ratio to raw {median / anchor:.3f}")
    for name in ("adapter", "per_token", "sourced"):
        ratio = statistics.median(rates[name]) / statistics.median(rates["model"])
        print(f"  {name} / model {ratio:.3f}")


if __name__ == "__main__":
    main()
