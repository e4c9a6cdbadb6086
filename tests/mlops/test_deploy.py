"""``deploy/``: CronJobs forbid overlapping runs; every deployed command parses with the CLI."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from genai_factory.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _parse(words: list[str]) -> Any:
    """Resolve ``genai-factory WORDS`` to its command and parse its options (bad ones raise)."""
    assert words[0] == "genai-factory"
    command: Any = typer.main.get_command(app)
    args = words[1:]
    while isinstance(command, TyperGroup):
        sub = command.get_command(typer.Context(command), args[0])
        assert sub is not None, f"no command {args[0]!r} in {' '.join(words)}"
        command, args = sub, args[1:]
    assert not isinstance(command, TyperGroup)
    command.make_context("genai-factory", list(args))  # raises on an unknown or missing option
    return command


K8S = DEPLOY / "k8s" / "base"


def _documents(pattern: str) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.rglob(pattern)):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _cronjobs() -> list[dict[str, Any]]:
    return [d for d in _documents("cronjob-*.yaml") if d["kind"] == "CronJob"]


def test_cronjobs_forbid_concurrency_and_run_real_commands() -> None:
    cronjobs = _cronjobs()
    assert {c["metadata"]["name"] for c in cronjobs} >= {
        "genai-factory-reindex",
        "genai-factory-drift",
        "genai-factory-loop",
    }
    for cronjob in cronjobs:
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        _parse(container["command"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        # State lives on servers: /data is scratch, never a volume shared by jobs on many nodes.
        assert mounts["data"] == "/data" and "emptyDir" in volumes["data"]
        if (
            cronjob["metadata"]["name"] != "genai-factory-vision-loop"
        ):  # the image loop has no index
            assert volumes["index"]["persistentVolumeClaim"]["claimName"] == "genai-factory-index"
            assert mounts["index"] == "/data/index"
        env = {e["name"]: e for e in container["env"]}
        secret = env["GENAI_GATEWAY__DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "genai-factory", "key": "database-url"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_loop_fine_tunes_and_guard_training_finds_its_datasets() -> None:
    commands = {c["metadata"]["name"]: _container(c)["command"] for c in _cronjobs()}
    assert "--train-data" in commands["genai-factory-loop"]
    guard = commands["genai-factory-train-guard"]
    assert guard[guard.index("--datasets") + 1] == "/datasets"
    for cronjob in _cronjobs():
        mounts = {m["name"]: m for m in _container(cronjob)["volumeMounts"]}
        assert mounts["datasets"]["mountPath"] == "/datasets" and mounts["datasets"]["readOnly"]


def _container(cronjob: dict[str, Any]) -> dict[str, Any]:
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def test_drift_cronjob_fails_fast_on_drift() -> None:
    [drift] = [c for c in _cronjobs() if c["metadata"]["name"] == "genai-factory-drift"]
    [rule] = drift["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [3]


def test_claimed_volumes_and_config_are_defined() -> None:
    claims = {d["metadata"]["name"] for d in _documents("storage.yaml")}
    assert claims == {"genai-factory-index", "genai-factory-datasets"}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    generated = {g["name"] for g in kustomization["configMapGenerator"]}
    assert generated == {"genai-factory-config", "genai-factory-env"}
    config = yaml.safe_load((K8S / "config.yaml").read_text())
    assert config["data_dir"] == "/data" and config["rag"]["ingest_on_start"] is False


def test_serving_deployment_runs_the_service_command() -> None:
    [deployment] = [d for d in _documents("deployment.yaml") if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert _parse(container["args"]).name == "serve"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_airflow_commands_exist_in_the_cli() -> None:
    tree = ast.parse((DEPLOY / "airflow" / "genai_factory_dag.py").read_text())
    [commands] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in node.targets)
    ]
    table = ast.literal_eval(commands)
    assert set(table) == {"drift", "reindex", "train_guard", "loop"}
    for template in table.values():
        _parse(shlex.split(template.format(reports="/data/reports")))


def test_parse_rejects_unknown_commands_and_options() -> None:
    with pytest.raises(AssertionError):
        _parse(["genai-factory", "jobs", "nightly"])
    with pytest.raises(Exception, match="No such option"):
        _parse(["genai-factory", "jobs", "drift", "--no-such-option"])
    with pytest.raises(Exception, match="Missing parameter: data"):
        _parse(["genai-factory", "train", "llm"])
    assert _parse(["genai-factory", "jobs", "reindex", "--force"]).name == "reindex"
