"""The registry on a real SQLite MLflow store in a temporary data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.mlops.registry import ModelRegistry, resolve_llm


@pytest.fixture
def registry(fake_settings: Settings) -> ModelRegistry:
    return ModelRegistry(fake_settings)


def _gguf(tmp_path: Path, name: str, content: bytes = b"GGUF") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_register_promote_rollback_round_trip(
    registry: ModelRegistry, fake_settings: Settings, tmp_path: Path
) -> None:
    name = fake_settings.mlops.llm_name
    first = registry.register(name, _gguf(tmp_path, "a.gguf", b"one"), tags={"note": "base"})
    second = registry.register(name, _gguf(tmp_path, "b.gguf", b"two"))
    third = registry.register(name, _gguf(tmp_path, "c.gguf", b"three"), alias=None)
    assert (first.version, second.version, third.version) == (1, 2, 3)
    assert first.tags["note"] == "base" and first.run_id
    # the challenger alias moved to the newest registration that asked for it
    assert registry.by_alias(name, "challenger") == registry.get(name, 2)

    registry.promote(name, 1)
    promoted = registry.promote(name, 2)
    assert promoted.aliases == ("champion",)  # the challenger alias was removed
    registry.promote(name, 3)
    assert registry.previous_champions(name) == [1, 2]

    # a new registry instance (another process) sees the same state
    again = ModelRegistry(fake_settings)
    assert again.rollback(name).version == 2
    assert again.rollback(name).version == 1
    with pytest.raises(InvalidRequestError, match="no previous champion"):
        again.rollback(name)
    listed = again.list(name)
    assert [(v.version, v.aliases) for v in listed] == [(1, ("champion",)), (2, ()), (3, ())]


def test_download_and_resolve_llm(
    registry: ModelRegistry, fake_settings: Settings, tmp_path: Path
) -> None:
    name = fake_settings.mlops.llm_name
    registry.register(name, _gguf(tmp_path, "m.gguf", b"weights"))
    path = registry.download(name, 1)
    assert path.read_bytes() == b"weights"
    assert resolve_llm(fake_settings, "base") is None
    assert resolve_llm(fake_settings, "challenger") == path
    assert resolve_llm(fake_settings, "1") == path
    local = _gguf(tmp_path, "local.gguf")
    assert resolve_llm(fake_settings, str(local)) == local
    with pytest.raises(NotFoundError, match="no 'champion' version"):
        resolve_llm(fake_settings, "champion")
    with pytest.raises(NotFoundError):
        resolve_llm(fake_settings, "7")


def test_directories_register_as_one_version(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = tmp_path / "guard"
    folder.mkdir()
    (folder / "injection.json").write_text("{}")
    (folder / "injection.npz").write_bytes(b"x")
    version = registry.register("genai-guard-injection", folder, description="first guard")
    assert version.description == "first guard"
    files = sorted(p.name for p in registry.download("genai-guard-injection", 1).iterdir())
    assert files == ["injection.json", "injection.npz"]
    assert registry.list() == [registry.get("genai-guard-injection", 1)]


def test_errors_are_package_errors(registry: ModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        registry.get("nothing", 1)
    with pytest.raises(NotFoundError):
        registry.promote("nothing", 1)
    with pytest.raises(NotFoundError):
        registry.register("x", tmp_path / "missing.gguf")
    with pytest.raises(InvalidRequestError):
        registry.register("bad'name", _gguf(tmp_path, "a.gguf"))
    assert registry.by_alias("nothing", "champion") is None


def test_runs_carry_job_and_version_tags(registry: ModelRegistry, tmp_path: Path) -> None:
    import mlflow

    version = registry.register("genai-llm", _gguf(tmp_path, "a.gguf"))
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["job"] == "register"
    assert run.data.tags["package_version"]


def test_models_cli(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    model = _gguf(tmp_path, "m.gguf")
    for _ in range(2):
        done = runner.invoke(app, ["models", "register", "genai-llm", str(model), "--json"])
        assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["models", "promote", "genai-llm", "1"]).exit_code == 0
    done = runner.invoke(app, ["models", "promote", "genai-llm", "2", "--json"])
    assert json.loads(done.stdout)["aliases"] == ["champion"]
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0
    assert "v2" in listed.stdout and "champion" in listed.stdout
    back = runner.invoke(app, ["models", "rollback", "genai-llm"])
    assert back.exit_code == 0 and "version 1" in back.stdout
    again = runner.invoke(app, ["models", "rollback", "genai-llm"])
    assert again.exit_code == 2
    assert "no previous champion" in again.output and "Traceback" not in again.output
    missing = runner.invoke(app, ["models", "promote", "genai-llm", "9"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_agents_adapter_resolves_a_registered_agent_adapter(
    registry: ModelRegistry, fake_settings: Settings, tmp_path: Path
) -> None:
    from genai_factory.exceptions import ConfigurationError
    from genai_factory.mlops.registry import (
        ADAPTER_KIND,
        BASE_REF_TAG,
        KIND_TAG,
        agent_adapter_path,
    )

    name = fake_settings.mlops.agent_llm_name
    tags = {KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: "base"}
    registry.register(name, _gguf(tmp_path, "agent.gguf", b"adapter"), tags=tags)
    merged = registry.register(name, _gguf(tmp_path, "merged.gguf", b"model"), alias=None)

    def with_adapter(ref: str) -> Settings:
        agents = fake_settings.agents.model_copy(update={"adapter": ref})
        return fake_settings.model_copy(update={"agents": agents})

    assert agent_adapter_path(with_adapter("challenger")).read_bytes() == b"adapter"
    assert agent_adapter_path(with_adapter("1")).read_bytes() == b"adapter"
    with pytest.raises(NotFoundError, match="champion"):
        agent_adapter_path(with_adapter("champion"))
    with pytest.raises(ConfigurationError, match="not a LoRA adapter"):
        agent_adapter_path(with_adapter(str(merged.version)))
    # the assistant's model name is untouched
    assert registry.by_alias(fake_settings.mlops.llm_name, "challenger") is None
