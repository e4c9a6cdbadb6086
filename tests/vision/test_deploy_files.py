"""The vision CronJob and Airflow DAG run commands the CLI accepts."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

import typer.main
import yaml
from typer.core import TyperGroup

from genai_factory.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _parse(words: list[str]) -> Any:
    assert words[0] == "genai-factory"
    command: Any = typer.main.get_command(app)
    args = words[1:]
    while isinstance(command, TyperGroup):
        sub = command.get_command(typer.Context(command), args[0])
        assert sub is not None, f"no command {args[0]!r}"
        command, args = sub, args[1:]
    command.make_context("genai-factory", list(args))
    return command


def test_the_cronjob_runs_vision_loop_and_fails_on_a_lost_gate() -> None:
    [cronjob] = yaml.safe_load_all(
        (DEPLOY / "k8s" / "base" / "cronjob-vision-loop.yaml").read_text()
    )
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    [container] = job["template"]["spec"]["containers"]
    assert _parse(container["command"]).name == "loop"
    assert container["command"][1:3] == ["vision", "loop"]
    [rule] = job["podFailurePolicy"]["rules"]
    assert rule["onExitCodes"]["values"] == [4]


def test_the_dag_commands_exist_in_the_cli() -> None:
    tree = ast.parse((DEPLOY / "airflow" / "genai_factory_vision_dag.py").read_text())
    [commands] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in node.targets)
    ]
    table = ast.literal_eval(commands)
    assert set(table) == {"check_drift", "retrain"}
    for template in table.values():
        _parse(shlex.split(template.format(data="/data/d", new="/data/new.npz")))
