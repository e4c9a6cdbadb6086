"""Guard classifiers follow the registry: the champion of ``genai-guard-<guard>`` is loaded before
the shipped artefacts, and a promotion rebuilds the running guards without a restart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from genai_factory.config import Settings
from genai_factory.llm.worker import ModelWorker
from genai_factory.mlops.champion import ChampionWatcher
from genai_factory.mlops.guard_champions import guard_champions
from genai_factory.mlops.registry import ModelRegistry
from genai_factory.safety.artefacts import packaged_dir
from genai_factory.safety.registry import SafetyService, artefact_dirs


def _toxicity_copy(directory: Path, version: str) -> Path:
    """The shipped toxicity artefact under another version label."""
    directory.mkdir(parents=True)
    shutil.copyfile(packaged_dir() / "toxicity.npz", directory / "toxicity.npz")
    manifest = json.loads((packaged_dir() / "toxicity.json").read_text())
    manifest["version"] = version
    (directory / "toxicity.json").write_text(json.dumps(manifest))
    return directory


def test_no_registry_means_the_usual_directories(fake_settings: Settings) -> None:
    assert guard_champions(fake_settings) == {}
    assert artefact_dirs(fake_settings) == [fake_settings.safety_dir(), packaged_dir()]


async def test_a_promoted_guard_is_served_and_followed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    settings = fake_settings
    registry = ModelRegistry(settings)
    name = f"{settings.mlops.guard_prefix}toxicity"
    first = registry.register(name, _toxicity_copy(tmp_path / "v1", "toxicity-test-1")).version
    second = registry.register(name, _toxicity_copy(tmp_path / "v2", "toxicity-test-2")).version

    safety = SafetyService(settings)
    watcher = ChampionWatcher(settings, None, ModelWorker(name="test"), safety)
    assert await watcher.check() is False  # nothing promoted: the shipped artefact
    await safety.load()
    shipped = json.loads((packaged_dir() / "toxicity.json").read_text())["version"]
    assert safety.resources.versions()["toxicity"] == shipped

    registry.promote(name, first)
    assert await watcher.check() is True
    assert safety.resources.versions()["toxicity"] == "toxicity-test-1"
    assert await watcher.check() is False  # unchanged: nothing reloaded

    registry.promote(name, second)
    assert await watcher.check() is True
    assert safety.resources.versions()["toxicity"] == "toxicity-test-2"
    registry.rollback(name)
    assert await watcher.check() is True
    assert safety.resources.versions()["toxicity"] == "toxicity-test-1"
    # The other guards still come from the shipped artefacts.
    assert safety.resources.versions()["injection"] is not None
    watcher.worker.close()
