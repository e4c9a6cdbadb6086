from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.rag.serving import ServingIndex, build_serving_index
from genai_factory.rag.versions import IndexVersions
from genai_factory.testing.fakes import FakeEmbedder


def test_only_ready_versions_activate_and_activation_is_one_file_swap(tmp_path: Path) -> None:
    versions = IndexVersions(tmp_path)
    assert versions.all() == [] and versions.active_id() is None
    first = versions.create(embedder="e", store="embedded")
    assert first.status == "building"
    with pytest.raises(InvalidRequestError, match="building"):
        versions.activate(first.id)
    versions.mark_ready(first.id, documents=2, chunks=5)
    versions.activate(first.id)
    assert (tmp_path / "ACTIVE").read_text().strip() == first.id
    assert [(v.id, v.active, v.documents) for v in versions.all()] == [(first.id, True, 2)]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place
    with pytest.raises(NotFoundError):
        versions.activate("v-missing")
    with pytest.raises(InvalidRequestError):
        versions.directory("../escape")
    with pytest.raises(InvalidRequestError, match="active"):
        versions.remove(first.id)


def test_prune_keeps_the_active_and_previous_versions(tmp_path: Path) -> None:
    versions = IndexVersions(tmp_path)
    ids = []
    for _ in range(5):
        info = versions.create(embedder="e", store="embedded")
        versions.mark_ready(info.id, documents=0, chunks=0)
        ids.append(info.id)
    building = versions.create(embedder="e", store="embedded")
    versions.activate(ids[1])
    assert versions.previous_id() == ids[0]
    removed = versions.prune(keep=2)
    assert sorted(removed) == sorted([ids[2]])
    assert [v.id for v in versions.all()] == [ids[0], ids[1], ids[3], ids[4], building.id]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [], "keep_versions": 2},
    )


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


async def test_rebuild_switches_atomically_and_rolls_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    serving = build_serving_index(settings, FakeEmbedder())
    old = _write(tmp_path / "old", {"cats.md": "# Cats\n\nCats purr softly.\n"})
    new = _write(tmp_path / "new", {"ships.md": "# Ships\n\nShips sail the ocean.\n"})
    assert await serving.search("cats purr") == []  # no version yet

    first, report = await serving.rebuild([old])
    assert first.active and first.status == "ready" and report.documents_indexed == 1
    assert (await serving.search("cats purr", 1))[0].chunk.source == "cats.md"

    # While a rebuild runs, the serving version answers; it switches only at the end.
    seen_during_build: list[str] = []

    def progress(done: int, total: int) -> None:
        seen_during_build.append(str(serving.active_id()))

    second, _ = await serving.rebuild([new], progress=progress)
    assert set(seen_during_build) == {first.id}
    assert serving.active_id() == second.id
    assert (await serving.search("ships ocean", 1))[0].chunk.source == "ships.md"
    assert await serving.search("cats purr", 1) == [] or (
        (await serving.search("cats purr", 1))[0].chunk.source != "cats.md"
    )

    # Another process (the CLI) activates the previous version: this one follows.
    other = IndexVersions(settings.index_dir())
    other.activate(other.previous_id() or "")
    assert serving.active_id() == first.id
    assert (await serving.search("cats purr", 1))[0].chunk.source == "cats.md"
    assert [v.id for v in serving.list_versions()] == [first.id, second.id]
    await serving.aclose()


async def test_incremental_ingest_and_delete_go_to_the_active_version(tmp_path: Path) -> None:
    serving: ServingIndex = build_serving_index(_settings(tmp_path), FakeEmbedder())
    docs = _write(
        tmp_path / "docs", {"a.md": "# A\n\nAlpha text.\n", "b.md": "# B\n\nBeta text.\n"}
    )
    report = await serving.ingest_path(docs)
    assert report.documents_indexed == 2
    (version,) = serving.list_versions()
    assert version.active and version.documents == 2
    records = await serving.documents()
    assert [r.source for r in records] == ["a.md", "b.md"]
    assert await serving.delete([records[0].id]) == 1
    with pytest.raises(NotFoundError):
        await serving.delete(["doc_missing"])
    assert serving.list_versions()[0].documents == 1
    await serving.aclose()


async def test_the_qdrant_backend_serves_versions_as_collections(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(deep=True)
    settings.rag.store = "qdrant"
    serving = build_serving_index(settings, FakeEmbedder())
    docs = _write(tmp_path / "docs", {"a.md": "# Anchors\n\nShips drop anchors in harbours.\n"})
    first, _ = await serving.rebuild([docs])
    second, _ = await serving.rebuild([docs])
    hits = await serving.search("anchors harbours", 1)
    assert hits[0].chunk.source == "a.md" and second.store == "qdrant"
    serving.activate(first.id)
    assert (await serving.search("anchors harbours", 1))[0].chunk.source == "a.md"
    await serving.aclose()
    assert (settings.index_dir() / "qdrant").is_dir()
