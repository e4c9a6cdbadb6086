"""Choosing the decline shift from one probe pass (no model: synthetic probes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.exceptions import InvalidRequestError
from genai_factory.mlops.calibration import Probed, choose_shift, scores_at, write_shift

# Answerable questions the model wants to decline a little (gap -1 .. +1), unanswerable ones it
# wants to decline more (gap 0 .. 2): a shift of -1 answers the first kind, declines half the rest.
ANSWERABLE = [Probed(("Paris",), gap, "Paris") for gap in (-1.0, -0.5, 0.5, 1.0)]
UNANSWERABLE = [Probed((), gap, "Lyon") for gap in (0.0, 0.5, 1.5, 2.0)]


def test_scores_follow_the_greedy_rule() -> None:
    probes = ANSWERABLE + UNANSWERABLE
    unshifted = scores_at(probes, 0.0)
    assert unshifted["has_answer_f1"] == 0.5  # gaps 0.5 and 1.0 decline
    assert unshifted["abstention_accuracy"] == 0.75  # gap 0.0 does not (gap + shift > 0)
    everything = scores_at(probes, -5.0)
    assert everything["has_answer_f1"] == 1.0 and everything["abstention_accuracy"] == 0.0


def test_the_chosen_shift_keeps_the_abstention_floor() -> None:
    result = choose_shift(ANSWERABLE + UNANSWERABLE, min_abstention=0.5)
    assert result.metrics["abstention_accuracy"] >= 0.5
    assert result.metrics["has_answer_f1"] == 1.0  # every answerable question answered
    assert result.shift == -1.0  # the smallest such shift in magnitude
    assert result.unshifted["has_answer_f1"] == 0.5


def test_a_decline_in_other_words_still_declines() -> None:
    probes = [Probed(("Paris",), -3.0, "Paris"), Probed((), -3.0, "unanswerable")]
    assert scores_at(probes, 0.0)["abstention_accuracy"] == 1.0


def test_unreachable_floor_takes_the_most_abstaining_shift() -> None:
    probes = [Probed(("Paris",), -1.0, "Paris"), Probed((), 0.5, "Lyon"), Probed((), -9.0, "Nice")]
    result = choose_shift(probes, min_abstention=0.9, grid=(-1.0, 0.0, 1.0))
    # 0 and +1 both decline the first unanswerable question only: the one closer to 0 wins
    assert result.shift == 0.0
    assert result.metrics["abstention_accuracy"] == 0.5


def test_one_kind_of_question_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="both"):
        choose_shift(ANSWERABLE)
    with pytest.raises(InvalidRequestError, match="no questions"):
        choose_shift([])


def test_the_shift_is_stored_beside_the_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    (tmp_path / "a.json").write_text(json.dumps({"examples": 12}))
    result = choose_shift(ANSWERABLE + UNANSWERABLE, min_abstention=0.5)
    path = write_shift(adapter, result, source="heldout.jsonl")
    stored = json.loads(path.read_text())
    assert stored["examples"] == 12  # other keys kept
    assert stored["decline_shift"] == -1.0
    assert stored["decline_calibration"]["chosen"]["has_answer_f1"] == 1.0
    from genai_factory.llm.llamacpp import stored_decline_shift

    assert stored_decline_shift(adapter) == -1.0


def test_cli_refuses_a_missing_adapter(cli_env: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "calibrate", "--adapter", str(tmp_path / "no.gguf"), "--dataset", "x.jsonl"],
    )
    assert result.exit_code == 2
    assert "no such adapter file" in result.output
