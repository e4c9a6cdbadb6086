"""``jobs reindex``: build beside the serving version, compare, activate only if not worse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from genai_factory.config import Settings
from genai_factory.messages import Document
from genai_factory.mlops.reindex import decide, probe_queries, run_reindex
from genai_factory.rag.versions import IndexVersions
from genai_factory.testing.fakes import FakeEmbedder

TOPICS = {
    "volcano": "Volcanoes erupt molten lava basalt magma craters ash plumes.",
    "orchestra": "An orchestra has violins cellos oboes trumpets and a conductor baton.",
    "glacier": "Glaciers carve fjords moraines crevasses icefields slowly flowing.",
    "bakery": "A bakery kneads sourdough croissants baguettes ovens yeast flour.",
    "satellite": "Satellites orbit earth transponders antennas solar panels telemetry.",
    "beekeeping": "Beekeeping hives honeycomb queens drones pollen smoker wax.",
}


def _knowledge(root: Path) -> Path:
    kb = root / "kb"
    kb.mkdir()
    for name, text in TOPICS.items():
        body = f"# {name.capitalize()}\n\n## {name} basics\n\n" + " ".join([text] * 5)
        (kb / f"{name}.md").write_text(body + "\n", encoding="utf-8")
    return kb


def _judged(root: Path, kb: Path, settings: Settings) -> Settings:
    """Settings with a BEIR query set judged against the knowledge folder's document ids."""
    from genai_factory.rag.loaders import load_path

    ids = {Path(d.source).stem: d.id for d in load_path(kb)}
    queries = root / "queries.jsonl"
    queries.write_text(
        "".join(
            json.dumps({"_id": f"q-{n}", "text": t.split()[1]}) + "\n" for n, t in TOPICS.items()
        ),
        encoding="utf-8",
    )
    qrels = root / "qrels.tsv"
    qrels.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q-{n}\t{ids[n]}\t1\n" for n in TOPICS),
        encoding="utf-8",
    )
    reindex = {"sources": [kb], "eval_queries": queries, "eval_qrels": qrels}
    return settings.model_copy(
        update={
            "mlops": settings.mlops.model_copy(
                update={"reindex": settings.mlops.reindex.model_copy(update=reindex)}
            )
        }
    )


def test_probe_queries_judge_titles_and_headings() -> None:
    docs = [
        Document(
            id="a",
            text="# Alpha\n\n## Setup\n\ntext",
            title="Alpha",
            source="a.md",
            content_hash="1",
        ),
        Document(
            id="b", text="# Beta\n\n## Setup\n\ntext", title="Beta", source="b.md", content_hash="2"
        ),
    ]
    queries, qrels = probe_queries(docs)
    by_text = {text: qrels[q] for q, text in queries.items()}
    assert by_text["Alpha"] == {"a": 1}
    assert by_text["Setup"] == {"a": 1, "b": 1}  # a shared heading judges both documents


def test_decide_rules() -> None:
    old = {"nDCG@10": 0.8}
    assert decide({"nDCG@10": 0.5}, None, max_regression=0.0, force=False) == "first"
    assert decide({"nDCG@10": 0.8}, old, max_regression=0.0, force=False) == "activated"
    assert decide({"nDCG@10": 0.75}, old, max_regression=0.1, force=False) == "activated"
    assert decide({"nDCG@10": 0.75}, old, max_regression=0.0, force=False) == "kept"
    assert decide({"nDCG@10": 0.75}, old, max_regression=0.0, force=True) == "forced"


async def test_worse_version_is_refused_and_removed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    kb = _knowledge(tmp_path)
    settings = _judged(tmp_path, kb, fake_settings)
    embedder = FakeEmbedder()
    versions = IndexVersions(settings.index_dir())

    first = await run_reindex(settings, embedder=embedder, track=False)
    assert first.decision == "first" and first.activated
    assert versions.active_id() == first.version_id
    assert first.eval_source == "qrels" and first.queries == len(TOPICS)
    assert first.new_metrics["nDCG@10"] > 0.9

    same = await run_reindex(settings, embedder=embedder, track=False)
    assert same.decision == "activated" and same.old_metrics is not None
    assert same.previous_id == first.version_id and same.dropped == []
    assert versions.active_id() == same.version_id

    for name in ("volcano", "orchestra", "glacier"):
        (kb / f"{name}.md").unlink()
    worse = await run_reindex(settings, embedder=embedder, track=False)
    assert worse.decision == "kept" and not worse.activated
    assert worse.dropped == ["glacier.md", "orchestra.md", "volcano.md"]
    assert "3 document(s)" in worse.summary()
    assert worse.new_metrics["nDCG@10"] < worse.old_metrics["nDCG@10"]  # type: ignore[index]
    assert versions.active_id() == same.version_id  # the serving version never changed
    assert worse.version_id not in {v.id for v in versions.all()}

    forced = await run_reindex(settings, embedder=embedder, force=True, track=False)
    assert forced.decision == "forced"
    assert versions.active_id() == forced.version_id


async def test_probe_fallback_on_bundled_docs(fake_settings: Settings) -> None:
    result = await run_reindex(fake_settings, embedder=FakeEmbedder(), track=False)
    assert result.eval_source == "probes" and result.queries > 10
    assert result.documents > 3 and result.chunks >= result.documents
    assert result.new_metrics["Recall@100"] > 0.5


def test_cli_tracks_registers_and_promotes(fake_settings: Settings, tmp_path: Path) -> None:
    from genai_factory.cli import app
    from genai_factory.mlops.registry import ModelRegistry

    kb = _knowledge(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(fake_settings.data_dir),
                "embeddings": {"provider": "fake"},
                "llm": {"provider": "fake", "model": "fake-chat"},
                "mlops": {"reindex": {"sources": [str(kb)]}},
            }
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["jobs", "reindex", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["decision"] == "first" and body["run_id"]
    settings = Settings(_env_file=None, data_dir=fake_settings.data_dir)  # type: ignore[call-arg]
    champion = ModelRegistry(settings).by_alias(settings.mlops.index_name, "champion")
    assert champion is not None and champion.version == body["registered_version"]
    assert champion.tags["index_version"] == body["version_id"]
    descriptor = json.loads(
        ModelRegistry(settings).download(champion.name, champion.version).read_text()
    )
    assert descriptor["version_id"] == body["version_id"]


def test_cli_error_exits_1(fake_settings: Settings, tmp_path: Path) -> None:
    from genai_factory.cli import app

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(fake_settings.data_dir),
                "embeddings": {"provider": "fake"},
                "mlops": {"reindex": {"sources": [str(tmp_path / "missing")]}},
            }
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["jobs", "reindex", "--config", str(config)])
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr


@pytest.fixture(autouse=True)
def _no_tty_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
