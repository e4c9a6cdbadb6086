"""End to end with the embedded model: SmolLM2-135M (llama.cpp) answers a question about
``examples/shop.db`` by querying it through the agent route (slow; run alone).

The agent uses the format built for tiny models (``json_staged``: choose the action, then write its
input under a JSON schema, the SQL under a grammar of the real tables). The success rate over a
larger question set is measured by ``bench/agent_shop.py``, not here: this test pins one question
the model answers, so a regression in the loop, the prompts or the grammar shows up.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.service import create_app

pytestmark = pytest.mark.slow

SHOP_DB = Path(__file__).resolve().parents[2] / "examples" / "shop.db"


@pytest.mark.timeout(900)
def test_embedded_model_counts_customers_with_sql(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        embeddings={"provider": "fake"},  # the agent needs no retrieval; keeps the test short
        rag={"ingest_on_start": False},
        # A generous time limit: this checks what the model does, not how busy the machine is.
        agents={"database": str(SHOP_DB), "tools": ["sql_schema", "sql_query"], "timeout_s": 600},
        safety={"enabled": False},
    )
    app = create_app(settings)
    with TestClient(app) as client:
        deadline = time.monotonic() + 300
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        response = client.post(
            "/v1/assistant/generate", json={"query": "How many customers are there?"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"] == "agent"  # chosen by the routing heuristic, not forced
    assert body["model"] == "smollm2-135m-instruct-q4_1"
    queries = [s for s in body["steps"] if s["tool"] == "sql_query" and not s["automatic"]]
    assert queries and queries[0]["ok"], body["steps"]
    assert re.search(r"^8$", queries[0]["observation"], re.MULTILINE), queries[0]
    assert re.search(r"\b8\b", body["answer"]), body["answer"]
    assert body["stop_reason"] == "answer" and body["limit_hit"] is False
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["cost_usd"] == 0.0
