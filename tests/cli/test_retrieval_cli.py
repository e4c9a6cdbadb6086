from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.testing.documents import write_beir

runner = CliRunner()


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENAI_LLM__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_EMBEDDINGS__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENAI_RAG__INGEST_ON_START", "false")
    return tmp_path


def _beir(directory: Path) -> list[str]:
    corpus, queries, qrels = write_beir(
        directory,
        corpus={
            "d1": ("Photosynthesis", "Plants convert sunlight into chemical energy."),
            "d2": ("Volcanoes", "Magma erupts from volcanoes as lava."),
            "d3": ("Tides", "The moon pulls ocean water, creating tides."),
        },
        queries={
            "q1": "How do plants convert sunlight?",
            "q2": "lava and magma",
            "q3": "quantum chromodynamics",
            "q4": "a query without judgments",
        },
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d9": 1}},
    )
    return ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]


def test_eval_retrieval_json_on_a_tiny_beir_set(fake_env: Path) -> None:
    args = ["eval", "retrieval", *_beir(fake_env / "beir"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"nDCG@10", "Recall@10", "Recall@100", "MRR@10"}
    for name in metrics:  # q1 and q2 are answered first, q3's document is not in the corpus
        assert metrics[name] == pytest.approx(2 / 3)
    cache = fake_env / "data" / "cache" / "fake-embedder.sqlite"
    assert cache.exists()
    plain = runner.invoke(app, args[:-1])
    assert plain.exit_code == 0 and "nDCG@10     0.6667" in plain.stdout


def test_eval_retrieval_reports_bad_input(fake_env: Path) -> None:
    args = _beir(fake_env / "beir")
    missing = runner.invoke(app, ["eval", "retrieval", *args[:-1], str(fake_env / "none.tsv")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    (fake_env / "beir" / "qrels.tsv").write_text("q9\td1\t1\n")
    unjudged = runner.invoke(app, ["eval", "retrieval", *args])
    assert unjudged.exit_code == 2 and "no query" in unjudged.output
    assert "Traceback" not in unjudged.output


def test_ingest_full_builds_versions_that_list_activate_and_roll_back(fake_env: Path) -> None:
    docs = fake_env / "docs"
    docs.mkdir()
    (docs / "pets.md").write_text("# Pets\n\nParrots can learn many words.\n")
    (docs / "page.html").write_text("<h1>Birds</h1><p>Owls hunt at night.</p>")
    first = runner.invoke(app, ["ingest", str(docs), "--full", "--json"])
    assert first.exit_code == 0, first.output
    first_version = json.loads(first.stdout)["version"]
    (docs / "pets.md").write_text("# Pets\n\nCats sleep all day.\n")
    second = runner.invoke(app, ["ingest", str(docs), "--full", "--json"])
    second_version = json.loads(second.stdout)["version"]
    assert second_version != first_version

    listed = json.loads(runner.invoke(app, ["index", "list", "--json"]).stdout)
    assert [(v["id"], v["active"]) for v in listed] == [
        (first_version, False),
        (second_version, True),
    ]
    assert listed[0]["documents"] == 2 and listed[0]["status"] == "ready"
    table = runner.invoke(app, ["index", "list"]).stdout
    assert f"* {second_version}" in table

    found = runner.invoke(app, ["search", "cats sleep", "--k", "1", "--json"])
    assert json.loads(found.stdout)[0]["text"] == "Cats sleep all day."
    rolled = runner.invoke(app, ["index", "rollback"])
    assert rolled.exit_code == 0 and first_version in rolled.stdout
    found = runner.invoke(app, ["search", "parrots words", "--k", "1", "--json"])
    assert "Parrots" in json.loads(found.stdout)[0]["text"]
    again = runner.invoke(app, ["index", "activate", second_version])
    assert again.exit_code == 0
    bad = runner.invoke(app, ["index", "activate", "v-nope"])
    assert bad.exit_code == 2 and "no index version" in bad.output
