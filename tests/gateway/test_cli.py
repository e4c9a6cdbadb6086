"""``genai-factory keys create | list | revoke`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def test_create_prints_the_key_once_and_stores_only_its_hash(data_dir: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--name", "ci"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("gf_") and "\n" not in key
    assert "not shown again" in result.stderr and "60 req/min" in result.stderr
    assert "20000 tokens/min" in result.stderr
    stored = b"".join(f.read_bytes() for f in data_dir.iterdir())
    assert key.encode() not in stored and key.split("_", 2)[2].encode() not in stored

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert key[3:15] in listed.stdout and "'ci'" in listed.stdout
    assert key not in listed.output


def test_create_with_limits_budget_and_admin_as_json(data_dir: Path) -> None:
    args = ["keys", "create", "--name", "ops", "--rpm", "5", "--tpm", "0", "--budget-usd", "2.5"]
    result = runner.invoke(app, [*args, "--budget-period", "day", "--admin", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    record = body["record"]
    assert body["key"].startswith(f"gf_{record['id']}_")
    assert (record["rpm"], record["tpm"], record["budget_usd"]) == (5, None, 2.5)
    assert record["budget_period"] == "day" and record["admin"] is True
    assert "key_hash" not in record
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert [k["id"] for k in listed] == [record["id"]]


def test_revoke_hides_the_key_from_the_list(data_dir: Path) -> None:
    first = json.loads(runner.invoke(app, ["keys", "create", "--name", "a", "--json"]).stdout)
    second = runner.invoke(app, ["keys", "create", "--name", "b"]).stdout.strip()
    revoked = runner.invoke(app, ["keys", "revoke", first["record"]["id"]])
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.strip() == f"revoked {first['record']['id']}"
    by_full_key = runner.invoke(app, ["keys", "revoke", second])  # the whole key works too
    assert by_full_key.exit_code == 0, by_full_key.output
    assert json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout) == []
    everything = json.loads(runner.invoke(app, ["keys", "list", "--all", "--json"]).stdout)
    assert len(everything) == 2 and all(k["revoked_at"] for k in everything)
    assert "revoked" in runner.invoke(app, ["keys", "list", "--all"]).stdout


def test_errors_are_one_line_with_exit_codes(data_dir: Path) -> None:
    unknown = runner.invoke(app, ["keys", "revoke", "0123456789ab"])
    assert unknown.exit_code == 2
    assert (
        unknown.stderr.startswith("error: no active API key") and "Traceback" not in unknown.output
    )
    period = runner.invoke(app, ["keys", "create", "--name", "x", "--budget-period", "week"])
    assert period.exit_code == 2 and "day or month" in period.stderr
    blank = runner.invoke(app, ["keys", "create", "--name", "  "])
    assert blank.exit_code == 2


def test_an_unreachable_database_is_one_error_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_GATEWAY__DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open the gateway database")


def test_serve_refuses_auth_off_on_a_public_address(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_AUTH__ENABLED", "false")
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "loopback" in result.stderr and "Traceback" not in result.output
