"""``genai-factory vision eval | predict | deploy`` on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.vision.preprocessing import encode_png

from .conftest import save_npz, synthetic

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))


def test_eval_prints_one_json_object(tmp_path: Path) -> None:
    data = save_npz(synthetic(40, seed=3), tmp_path / "d.npz")
    result = runner.invoke(
        app, ["vision", "eval", "--data", str(data), "--model", "bundled", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {"auc", "accuracy", "sensitivity", "specificity", "n"} <= set(found)
    assert found["n"] == 40 and found["model_version"] == "bundled"


def test_eval_of_a_missing_champion_is_an_error(tmp_path: Path) -> None:
    data = save_npz(synthetic(10, seed=3), tmp_path / "d.npz")
    result = runner.invoke(app, ["vision", "eval", "--data", str(data), "--model", "challenger"])
    assert result.exit_code == 2 and "challenger" in result.output


def test_predict_files(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        path = tmp_path / f"{i}.png"
        path.write_bytes(encode_png(np.full((28, 28), 100 + i, dtype=np.uint8)))
        paths.append(str(path))
    result = runner.invoke(app, ["vision", "predict", *paths, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [row["file"] for row in body["predictions"]] == paths
    assert body["model_version"] == "bundled"


def test_deploy_is_honest_without_aws_settings() -> None:
    result = runner.invoke(app, ["vision", "deploy", "--target", "sagemaker", "--dry-run"])
    assert result.exit_code == 1 and "vision.sagemaker" in result.output


def test_deploy_dry_run_prints_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "ENDPOINT_NAME": "pneumonia",
        "ROLE_ARN": "arn:aws:iam::1:role/x",
        "IMAGE_URI": "1.dkr.ecr.eu-west-1.amazonaws.com/genai:1",
        "MODEL_DATA_URL": "s3://b/model.tar.gz",
    }.items():
        monkeypatch.setenv(f"GENAI_VISION__SAGEMAKER__{key}", value)
    result = runner.invoke(app, ["vision", "deploy", "--dry-run"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [step["operation"] for step in plan["requests"]] == [
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
    ]
