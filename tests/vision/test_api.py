"""``POST /v1/vision/predict`` and the SageMaker contract in the real service, bundled model."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder
from genai_factory.vision.bundle import bundled_model_dir
from genai_factory.vision.preprocessing import encode_png

REPO = Path(__file__).resolve().parents[2]
VAL = REPO.parent / "shared" / "datasets" / "pneumoniamnist" / "val.npz"
PREDICT = "/v1/vision/predict"


def _settings(tmp_path: Path, **vision: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [], "min_score": 0.0},
        observability={"access_log": False},
        vision=vision,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path), model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app) as started:
        yield started


def _images() -> tuple[np.ndarray, np.ndarray]:
    if VAL.is_file():
        with np.load(VAL) as data:
            return data["images"][:40], data["labels"][:40]
    rng = np.random.default_rng(0)  # a fresh clone without the shared data sets
    return rng.integers(0, 255, (40, 28, 28), dtype=np.uint8), np.zeros(40, dtype=np.int64)


def test_the_bundled_model_is_shipped() -> None:
    assert (bundled_model_dir() / "model.json").is_file()
    assert (bundled_model_dir() / "model.pt").stat().st_size < 5_000_000


def test_multipart_batch_answers_every_image_in_order(client: TestClient, tmp_path: Path) -> None:
    images, labels = _images()
    files = [("images", (f"{i}.png", encode_png(img), "image/png")) for i, img in enumerate(images)]
    response = client.post(PREDICT, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "bundled" and "not a medical device" in body["disclaimer"]
    rows = body["predictions"]
    assert len(rows) == 40 and {r["label"] for r in rows} <= {"normal", "pneumonia"}
    for r in rows:  # confidence: the probability of the predicted label
        expected = r["probability"] if r["label_id"] == 1 else 1 - r["probability"]
        assert r["confidence"] == pytest.approx(expected, abs=1e-5)
    if VAL.is_file():
        accuracy = np.mean([r["label_id"] for r in rows] == labels)
        assert accuracy >= 0.85
    log = tmp_path / "data" / "vision" / "inputs.jsonl"
    deadline = time.monotonic() + 5
    while not log.is_file() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(log.read_text().splitlines()) == 40


def test_base64_json_gives_the_same_answer_as_multipart(client: TestClient) -> None:
    png = encode_png(_images()[0][0])
    as_json = client.post(PREDICT, json={"images": [base64.b64encode(png).decode()]}).json()
    as_form = client.post(PREDICT, files={"image": ("x.png", png, "image/png")}).json()
    assert as_json["predictions"] == as_form["predictions"]
    wrapped = client.post(PREDICT, json={"images": [{"b64": base64.b64encode(png).decode()}]})
    assert wrapped.json()["predictions"] == as_json["predictions"]


def test_sagemaker_contract(client: TestClient) -> None:
    ping = client.get("/ping")
    assert ping.status_code == 200 and ping.json()["model_version"] == "bundled"
    png = encode_png(_images()[0][1])
    raw = client.post("/invocations", content=png, headers={"content-type": "image/png"})
    instances = client.post(
        "/invocations", json={"instances": [{"b64": base64.b64encode(png).decode()}]}
    )
    assert raw.status_code == instances.status_code == 200
    assert raw.json()["predictions"] == instances.json()["predictions"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"images": ["!!!"]}}, 400),
        ({"json": {"images": []}}, 400),
        ({"json": {"wrong": 1}}, 400),
        ({"files": {"images": ("x.png", b"\x89PNG\r\n\x1a\n broken", "image/png")}}, 422),
        ({"files": {"images": ("x.txt", b"just some text", "text/plain")}}, 415),
        (
            {"files": {"images": ("x.png", encode_png(np.zeros((4, 4), np.uint8)), "image/png")}},
            422,
        ),
    ],
)
def test_bad_requests_are_refused_clearly(
    client: TestClient, kwargs: dict[str, Any], status: int
) -> None:
    response = client.post(PREDICT, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_batch_and_size_limits(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_batch=2, max_image_bytes=2000)
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    png = encode_png(np.zeros((28, 28), np.uint8))
    with TestClient(app) as started:
        too_many = started.post(PREDICT, files=[("images", ("x.png", png, "image/png"))] * 3)
        big = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
        too_big = started.post(PREDICT, files={"images": ("x.png", encode_png(big), "image/png")})
    assert too_many.status_code == 400 and too_big.status_code == 413


def test_metrics_count_requests_labels_confidence_and_errors(client: TestClient) -> None:
    png = encode_png(_images()[0][0])
    client.post(PREDICT, files={"images": ("x.png", png, "image/png")})
    client.post(PREDICT, files={"images": ("x.txt", b"text", "text/plain")})
    metrics = client.get("/metrics").text
    assert 'genai_vision_requests_total{endpoint="predict",status="ok"} 1.0' in metrics
    assert 'genai_vision_requests_total{endpoint="predict",status="client_error"} 1.0' in metrics
    assert "genai_vision_confidence_bucket" in metrics
    assert 'genai_vision_model_info{version="bundled"} 1.0' in metrics
    assert "genai_vision_images_total{label=" in metrics


def test_the_image_model_is_not_loaded_before_the_first_vision_request(client: TestClient) -> None:
    assert getattr(client.app.state, "vision", None) is None  # type: ignore[attr-defined]
    client.get("/ping")
    assert client.app.state.vision is not None  # type: ignore[attr-defined]
