"""A promotion while a client sends requests without pause: the service switches to the new
champion without a restart and not one request fails (real llama.cpp, real MLflow registry; slow)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.llm.llamacpp import bundled_gguf_path
from genai_factory.mlops.registry import ModelRegistry
from genai_factory.service import create_app

pytestmark = pytest.mark.slow


def _wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 300
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.2)


def test_promotion_under_continuous_traffic_fails_no_request(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        rag={"ingest_on_start": False},
        mlops={"poll_s": 0.3},
    )
    # A "fine-tuned" version: the shipped weights under a new file name are enough to prove the swap.
    candidate = tmp_path / "candidate.gguf"
    shutil.copyfile(bundled_gguf_path(), candidate)
    registry = ModelRegistry(settings)
    version = registry.register(settings.mlops.llm_name, candidate, alias="challenger").version

    served: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    with TestClient(create_app(settings)) as client:
        _wait_ready(client)

        def traffic() -> None:
            while not stop.is_set():
                response = client.post(
                    "/v1/chat/completions",
                    json={
                        "model": settings.llm.model,
                        "messages": [{"role": "user", "content": "Say hello."}],
                        "max_tokens": 4,
                    },
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    served.append(response.json()["model"])

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            time.sleep(1.0)
            registry.promote(settings.mlops.llm_name, version)
            promoted = f"{settings.mlops.llm_name}:v{version}"
            deadline = time.monotonic() + 60
            while promoted not in served[-3:]:
                assert time.monotonic() < deadline, served[-5:]
                time.sleep(0.1)
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join(timeout=60)

    assert failures == []
    before = served.index(promoted)
    assert before > 0, "no request was answered by the previous model"
    assert served[0] == "smollm2-135m-instruct-q4_1"
    # Once the champion answers, every later request is answered by it.
    assert set(served[before:]) == {promoted}
