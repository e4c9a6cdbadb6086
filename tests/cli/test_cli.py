from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app

runner = CliRunner()


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENAI_LLM__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_EMBEDDINGS__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENAI_RAG__MIN_SCORE", "0.2")
    return tmp_path


def test_ask_json_prints_the_api_answer(fake_env: Path) -> None:
    result = runner.invoke(app, ["ask", "How do I configure a fallback model?", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    # The fake model echoes its prompt, which no source sentence holds, so the best-matching
    # sentence of the sources answers instead (docs/knowledge-base.md), cited.
    assert not body["answer"].startswith("echo:")
    assert "fallback" in body["answer"].lower() and body["answer"].endswith("].")
    assert body["route"] == "rag"
    assert body["citations"] and {"document_id", "source", "excerpt", "score"} <= set(
        body["citations"][0]
    )
    assert {"prompt_tokens", "completion_tokens", "cost_usd"} <= set(body["usage"])
    assert {"latency_ms", "model", "trace_id"} <= set(body)


def test_ask_plain_lists_sources(fake_env: Path) -> None:
    result = runner.invoke(app, ["ask", "circuit breaker cool-down", "--mode", "rag"])
    assert result.exit_code == 0, result.output
    assert "Sources:" in result.stdout


def test_ingest_then_search(fake_env: Path) -> None:
    docs = fake_env / "docs"
    docs.mkdir()
    (docs / "pets.md").write_text("# Pets\n\nParrots can learn many words.\n")
    first = runner.invoke(app, ["ingest", str(docs), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["documents_indexed"] == 1
    second = runner.invoke(app, ["ingest", str(docs)])
    assert "1 unchanged" in second.stdout
    found = runner.invoke(app, ["search", "parrots words", "--k", "1", "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)[0]["source"] == "pets.md"


def test_errors_are_one_line_without_traceback(fake_env: Path) -> None:
    missing = runner.invoke(app, ["ingest", str(fake_env / "nope")])
    assert missing.exit_code == 2
    assert "error:" in missing.output and "Traceback" not in missing.output
    empty = runner.invoke(app, ["ask", "  "])
    assert empty.exit_code == 2
    bad_mode = runner.invoke(app, ["ask", "hi", "--mode", "x"])
    assert bad_mode.exit_code == 2


def test_bad_config_is_reported(fake_env: Path) -> None:
    config = fake_env / "bad.yaml"
    config.write_text("rag:\n  top_k: many\n")
    result = runner.invoke(app, ["ask", "hi", "--config", str(config)])
    assert result.exit_code != 0
    assert "rag.top_k" in result.output
    assert "Traceback" not in result.output
