"""The image model's loop closing by itself: a new acquisition is detected and a retrained model wins.

1. **Before** — the registry's champion is the bundled demonstration model; the service (the real
   ``create_app``, fake LLM) classifies 200 validation X-rays as they were acquired for training.
   ``genai-factory vision loop`` finds no drift in what was served.
2. **New acquisition** — a second site sends images with a different exposure and detector: lower
   contrast, a different gamma and more noise (:func:`acquire`, a deterministic transform of the
   public images; the labels are unchanged). The service classifies 200 of them.
3. ``genai-factory vision loop --new-data site_b_train.npz`` — the drift check (image statistics,
   penultimate embeddings, confidence; KS and MMD with Holm correction) finds drift; the loop
   retrains on the original training set plus the new site's labelled images; the gate scores the
   challenger and the champion on one fixed validation set (both sites) and promotes the challenger
   because it is not worse (and, on the new site, better). MLflow records every step.
4. **After** — the service follows the new champion without a restart; the new site's images are
   classified by it.

Run: ``make demo-vision`` or ``.venv/bin/python examples/vision_demo/run.py [--data-dir DIR]``.
The bundled model is a demonstration trained on a public research set, not a diagnostic device.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = (
    Path(os.environ.get("GENAI_DATASETS", REPO.parent / "shared" / "datasets")) / "pneumoniamnist"
)
SERVED = 200


def acquire(images: np.ndarray, seed: int) -> np.ndarray:
    """The same anatomy through another site's acquisition: gamma 1.8, contrast 0.55, noise."""
    rng = np.random.default_rng(seed)
    x = images.astype(np.float64) / 255.0
    x = x**1.8
    x = (x - x.mean(axis=(1, 2), keepdims=True)) * 0.55 + 0.45
    x = x + rng.normal(0, 0.06, x.shape)
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _save(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez_compressed(path, images=images, labels=labels)
    return path


def _prepare(work: Path) -> dict[str, Path]:
    with np.load(DATA / "train.npz") as train, np.load(DATA / "val.npz") as val:
        tr_x, tr_y, va_x, va_y = train["images"], train["labels"], val["images"], val["labels"]
    half = len(va_x) // 2
    site_b_val = acquire(va_x, 2)
    return {
        "site_a_served": _save(work / "site_a_served.npz", va_x[:SERVED], va_y[:SERVED]),
        "site_b_served": _save(
            work / "site_b_served.npz", site_b_val[half : half + SERVED], va_y[half : half + SERVED]
        ),
        "site_b_train": _save(work / "site_b_train.npz", acquire(tr_x, 1), tr_y),
        # the fixed gate set: the first half of validation from each site (never served above)
        "gate_val": _save(
            work / "gate_val.npz",
            np.concatenate([va_x[:half], site_b_val[:half]]),
            np.concatenate([va_y[:half], va_y[:half]]),
        ),
    }


def _cli(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "GENAI_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "genai_factory.cli", *args], env=env, capture_output=True, text=True
    )
    sys.stderr.write(done.stderr)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        print(done.stdout)
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(args)}") from None


def _serve(client: Any, path: Path) -> dict[str, Any]:
    from genai_factory.vision.preprocessing import encode_png

    with np.load(path) as data:
        images, labels = data["images"], data["labels"]
    correct, version = 0, ""
    for start in range(0, len(images), 20):
        files = [
            ("images", (f"{i}.png", encode_png(img), "image/png"))
            for i, img in enumerate(images[start : start + 20])
        ]
        body = client.post("/v1/vision/predict", files=files).json()
        version = body["model_version"]
        correct += sum(
            int(p["label_id"] == y)
            for p, y in zip(body["predictions"], labels[start : start + 20], strict=True)
        )
    return {"model_version": version, "accuracy": correct / len(images), "n": len(images)}


def _register_bundled(settings: Any) -> None:
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.vision.bundle import bundled_model_dir

    registry = ModelRegistry(settings)
    version = registry.register(
        settings.vision.model_name,
        bundled_model_dir(),
        alias=None,
        description="the bundled demonstration model",
    )
    registry.promote(settings.vision.model_name, version.version)


def _follow(client: Any, expected: str | None) -> None:
    """Wait until the service serves ``expected`` (it polls the registry every ``poll_s``)."""
    deadline = time.monotonic() + 30
    while expected is not None and time.monotonic() < deadline:
        if client.get("/ping").json()["model_version"] == expected:  # a request starts the check
            return
        time.sleep(0.5)


def _loop_line(result: dict[str, Any]) -> str:
    tests = result["drift"]["tests"]
    shown = ", ".join(
        f"{n} p={t['p_adjusted']:.2g}{' DRIFT' if t['drifted'] else ''}" for n, t in tests.items()
    )
    return f"drift={result['drift']['drift']}  ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description="The image model's MLOps loop, end to end.")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".genai-vision-demo")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from genai_factory.config import Settings
    from genai_factory.service import create_app
    from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

    shutil.rmtree(args.data_dir, ignore_errors=True)
    work = args.data_dir / "sets"
    work.mkdir(parents=True)
    sets = _prepare(work)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=args.data_dir,
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        mlops={"poll_s": 1.0},
        observability={"access_log": False},
    )
    _register_bundled(settings)
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    started = time.monotonic()
    with TestClient(app) as client:
        print(
            "1. before — site A (as acquired for training):", _serve(client, sets["site_a_served"])
        )
        code, result = _cli(args.data_dir, "vision", "loop", "--json")
        print("   vision loop:", _loop_line(result))
        print("2. new acquisition — site B:", _serve(client, sets["site_b_served"]))
        print("3. vision loop --new-data site_b_train.npz (retrain on drift, gate, promote) ...")
        code, result = _cli(
            args.data_dir,
            "vision",
            "loop",
            "--json",
            "--new-data",
            str(sets["site_b_train"]),
            "--train",
            str(DATA / "train.npz"),
            "--val",
            str(sets["gate_val"]),
            "--recipe",
            str(HERE / "recipe.yaml"),
        )
        print("   ", _loop_line(result))
        training = result["training"] or {}
        print(f"   challenger v{training.get('version')}: {json.dumps(training.get('metrics'))}")
        print(f"   champion on the same gate set: {json.dumps(training.get('champion_metrics'))}")
        for gate in training.get("gates", []):
            print(
                f"   {gate['status'].upper():7} {gate['metric']} {gate['condition']}: {gate['detail']}"
            )
        print(f"   promoted: {result['promoted']} (exit {code})")
        _follow(client, str(training.get("version")) if result["promoted"] else None)
        print("4. after — site B again:", _serve(client, sets["site_b_served"]))
    print(f"done in {time.monotonic() - started:.0f} s; MLflow: {args.data_dir / 'mlflow.db'}")
    print("A demonstration on a public research set, not a diagnostic device.")


if __name__ == "__main__":
    main()
