"""Serving cost of the image model: ``/v1/vision/predict`` against a raw model call, side by side.

A uvicorn server with the real service (fake LLM and embedder: only the vision route is used) runs
in a child process on 127.0.0.1, so the client's work does not share the server's interpreter.
In interleaved rounds, in one run:

* **latency**: one PNG per request (multipart), timed by the client: p50 / p95 in ms over all
  requests; the raw anchor is ``Predictor.predict`` on one already-decoded image;
* **throughput**: a batch of ``--batch`` PNGs per request: images/s of the service against
  ``Predictor.predict`` on the same batch, already decoded (median over rounds, and the ratio).

Targets: one-image p95 <= 15 ms; batch throughput ratio >= 0.8. Run it under the CPU lock:

    flock /tmp/genai-cpu.lock .venv/bin/python bench/vision.py [--rounds 30] [--batch 64] [--no-log-inputs]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import numpy as np
import torch

from genai_factory.vision.bundle import bundled_model_dir
from genai_factory.vision.predictor import Predictor
from genai_factory.vision.preprocessing import encode_png

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GENAI_DATASETS", REPO.parent / "shared" / "datasets"))
VAL = DATA / "pneumoniamnist" / "val.npz"


def _serve(port: int, data_dir: str) -> None:
    import uvicorn

    from genai_factory.config import Settings
    from genai_factory.service import create_app
    from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

    torch.set_num_threads(2)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=Path(data_dir),
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [], "min_score": 0.0},
        observability={"access_log": False},
    )
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get("/ping").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def _post(client: httpx.Client, pngs: list[bytes]) -> float:
    files = [("images", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
    started = time.perf_counter()
    response = client.post("/v1/vision/predict", files=files)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--singles", type=int, default=10, help="one-image requests per round")
    parser.add_argument(
        "--no-log-inputs", action="store_true", help="serve without the drift log (on by default)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    with np.load(VAL) as data:
        images = data["images"][: args.batch]
    pngs = [encode_png(image) for image in images]
    predictor = Predictor.load(bundled_model_dir())
    port = _free_port()
    with TemporaryDirectory() as scratch:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), scratch],
            env={**os.environ, "GENAI_VISION__LOG_INPUTS": str(not args.no_log_inputs).lower()},
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                _wait(client)
                _measure(client, predictor, images, pngs, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _measure(
    client: httpx.Client,
    predictor: Predictor,
    images: np.ndarray,
    pngs: list[bytes],
    args: argparse.Namespace,
) -> None:
    for _ in range(5):  # warm-up: first requests load the model and fill caches
        _post(client, pngs[:1])
        _post(client, pngs)
        predictor.predict(images)
    single_raw: list[float] = []
    single_service: list[float] = []
    batch_raw: list[float] = []
    batch_service: list[float] = []
    for round_ in range(args.rounds):
        for i in range(args.singles):
            k = (round_ * args.singles + i) % len(pngs)
            single_raw.append(_timed(lambda k=k: predictor.predict(images[k : k + 1])))
            single_service.append(_post(client, [pngs[k]]))
        batch_raw.append(_timed(lambda: predictor.predict(images)))
        batch_service.append(_post(client, pngs))
    ms = lambda values, q: float(np.percentile(values, q)) * 1000  # noqa: E731
    print(f"one image, {len(single_service)} requests (multipart PNG, HTTP on 127.0.0.1):")
    print(
        f"  service  p50 {ms(single_service, 50):6.2f} ms  p95 {ms(single_service, 95):6.2f} ms  (target p95 <= 15 ms)"
    )
    print(
        f"  raw      p50 {ms(single_raw, 50):6.2f} ms  p95 {ms(single_raw, 95):6.2f} ms  (Predictor.predict, decoded)"
    )
    raw_rate = args.batch / statistics.median(batch_raw)
    service_rate = args.batch / statistics.median(batch_service)
    print(f"batch of {args.batch}, {args.rounds} rounds (medians):")
    print(
        f"  raw      {raw_rate:8.1f} images/s  ({statistics.median(batch_raw) * 1000:.2f} ms per batch)"
    )
    print(
        f"  service  {service_rate:8.1f} images/s  ({statistics.median(batch_service) * 1000:.2f} ms per batch)"
    )
    print(f"  ratio service / raw: {service_rate / raw_rate:.3f}  (target >= 0.8)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(int(sys.argv[2]), sys.argv[3])
    else:
        main()
