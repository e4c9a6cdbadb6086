"""``genai-factory train data | llm | guard``: outputs, errors, and the tracked guard job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.mlops.training import guards

runner = CliRunner()


def test_train_data_writes_split_training_and_heldout(qa_file: Path, cli_env: Path) -> None:
    out = cli_env.parent / "train.jsonl"
    held = cli_env.parent / "held.jsonl"
    args = ["train", "data", "--squad", str(qa_file), "--out", str(out), "--heldout-out", str(held)]
    args += ["--unanswerable-share", "1"]  # keep every question of the tiny file
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    split = report["split"]
    assert len(split["train"]) == len(split["heldout"]) == 1
    trained = [json.loads(line) for line in out.read_text().splitlines()]
    heldout = [json.loads(line) for line in held.read_text().splitlines()]
    assert {q["title"] for q in heldout} == set(split["heldout"])
    assert len(trained) == report["squad"] == 2 and report["unanswerable"] == 1
    assert all(split["heldout"][0] not in json.dumps(row) for row in trained)
    assert json.loads(Path(report["split_file"]).read_text()) == split
    # the same data gives the same split; --titles-from with the split file reproduces it
    again = runner.invoke(app, [*args, "--titles-from", report["split_file"], "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["split"] == split


def test_train_data_caps_unanswerable_rows_by_default(qa_file: Path, cli_env: Path) -> None:
    out = cli_env.parent / "train.jsonl"
    args = ["train", "data", "--squad", str(qa_file), "--out", str(out), "--json"]
    report = json.loads(runner.invoke(app, args).output)
    # one answerable and one unanswerable question per title: a 0.25 cap leaves no room for it
    assert report["unanswerable_share"] == 0.25
    assert (report["squad"], report["unanswerable"], report["unanswerable_dropped"]) == (1, 0, 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["answer"] for row in rows] != ["unanswerable"] and len(rows) == 1
    half = json.loads(runner.invoke(app, [*args, "--unanswerable-share", "0.5"]).output)
    assert (half["squad"], half["unanswerable"], half["unanswerable_dropped"]) == (2, 1, 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--squad", "missing.jsonl"], "no such file"),
        (["--holdout-share", "1.5"], "strictly between 0 and 1"),
        (["--titles-from", "nowhere.txt"], "no such file"),
        (["--unanswerable-share", "-0.1"], "between 0 and 1"),
        (["--unanswerable-share", "1.5"], "between 0 and 1"),
    ],
)
def test_train_data_errors(qa_file: Path, cli_env: Path, extra: list[str], message: str) -> None:
    args = ["train", "data", "--squad", str(qa_file), "--out", str(cli_env.parent / "t.jsonl")]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_train_llm_errors_before_loading_anything(cli_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "llm", "--data", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "no such file" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": "hi", "answer": "x"}\n')
    result = runner.invoke(app, ["train", "llm", "--data", str(bad), "--steps", "0"])
    assert result.exit_code == 2 and "steps" in result.output
    result = runner.invoke(app, ["train", "llm", "--data", str(bad), "--no-register"])
    assert result.exit_code == 2 and "'messages' must be a non-empty list" in result.output
    result = runner.invoke(
        app, ["train", "llm", "--data", str(bad), "--base", str(tmp_path / "x.gguf")]
    )
    assert result.exit_code == 2 and "no such GGUF file" in result.output
    assert not (cli_env / "mlflow.db").exists()  # nothing was tracked for refused input


def test_train_guard_errors(cli_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "guard", "--guard", "nonsense"])
    assert result.exit_code == 2 and "unknown guard" in result.output
    result = runner.invoke(
        app, ["train", "guard", "--guard", "toxicity", "--datasets", str(tmp_path)]
    )
    assert result.exit_code == 2 and "toxicity/dev.csv" in result.output


def test_flatten_metrics_keeps_numbers_only() -> None:
    nested = {"a": {"f1": 0.5, "n": 3, "ok": True, "name": "x"}, "b": 1.0}
    assert guards.flatten_metrics(nested) == {"a.f1": 0.5, "a.n": 3.0, "b": 1.0}
    with pytest.raises(InvalidRequestError, match="unknown guard"):
        guards.check_datasets("bogus", Path("."))


def test_guard_job_tracks_and_registers_a_challenger(
    fake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper around the trainer (the trainer itself is tested in tests/safety)."""

    def fake_train(guard: str, datasets: Path, out: Path) -> dict[str, Any]:
        (out / f"{guard}.json").write_text("{}")
        return {
            "name": guard,
            "version": f"{guard}-test-1",
            "data_sha256": "abc",
            "c": 10.0,
            "metrics": {"holdout": {"f1": 0.75, "precision": 0.8}},
        }

    monkeypatch.setattr(guards, "_train", fake_train)
    result = guards.train_guard(fake_settings, "names", tmp_path, out=tmp_path / "artefacts")
    assert result.metrics == {"holdout.f1": 0.75, "holdout.precision": 0.8}
    assert result.registered_version == 1 and result.aliases == ["challenger"]

    import mlflow

    run = mlflow.MlflowClient(fake_settings.mlflow_tracking_uri()).get_run(result.run_id)
    assert run.data.metrics["holdout.f1"] == 0.75
    assert run.data.params["guard"] == "names" and run.data.params["c"] == "10.0"
    assert run.data.tags["job"] == "train_guard"

    from genai_factory.mlops.registry import ModelRegistry

    registry = ModelRegistry(fake_settings)
    name = f"{fake_settings.mlops.guard_prefix}names"
    assert registry.by_alias(name, "challenger") is not None
    downloaded = registry.download(name, 1)
    assert next(downloaded.rglob("names.json"), None) is not None, (
        "the artefact directory is registered"
    )


def test_training_progress_is_plain_lines_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from genai_factory.mlops import train_cli

    with train_cli._training_bars(40, enabled=True) as hooks:
        hooks.stage("training")
        for index in range(1, 41):
            hooks.step(index, 1.0 / index)
    lines = capsys.readouterr().err.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert lines[0].startswith("training (")
    assert len(steps) == 20  # every 5 % of the steps
    assert steps[-1].startswith("step 40/40 loss 0.025 (")
