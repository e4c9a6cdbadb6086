"""End to end on the embedded defaults: the real SmolLM2 model and the real MiniLM embedder
answer a question from the bundled user guide over HTTP and cite the right document (slow)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.service import create_app

pytestmark = pytest.mark.slow


def test_embedded_assistant_answers_from_the_user_guide(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    app = create_app(settings)
    with TestClient(app) as client:
        deadline = time.monotonic() + 300
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        assert client.get("/readyz").json()["index_chunks"] > 20
        response = client.post(
            "/v1/assistant/generate",
            json={"query": "How do I configure a fallback model?", "max_tokens": 96},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"] == "rag"
    assert body["model"] == "smollm2-135m-instruct-q4_1"
    assert body["answer"].strip()
    top = body["citations"][0]
    assert top["source"] == "models.md"
    assert "fallback" in top["excerpt"].lower()
    assert body["usage"]["prompt_tokens"] > 100
    assert 0 < body["usage"]["completion_tokens"] <= 96
    assert body["usage"]["cost_usd"] == 0.0
    # Nothing outside the bundled guide was cited.
    guide = {p.name for p in (Path(__file__).resolve().parents[2] / "docs").glob("*.md")}
    assert {c["source"] for c in body["citations"]} <= guide
