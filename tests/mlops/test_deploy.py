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


def _cronjobs() -> list[dict[str, Any]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return [d for d in documents if d["kind"] == "CronJob"]


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
        claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
        assert claims["data"]["claimName"] == "genai-factory-data" and mounts["data"] == "/data"
        assert {"name": "GENAI_DATA_DIR", "value": "/data"} in container["env"]


def test_drift_cronjob_fails_fast_on_drift() -> None:
    [drift] = [c for c in _cronjobs() if c["metadata"]["name"] == "genai-factory-drift"]
    [rule] = drift["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [3]


def test_claimed_volume_is_defined() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "storage.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("PersistentVolumeClaim", "genai-factory-data") in kinds
    assert ("ConfigMap", "genai-factory-config") in kinds


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
