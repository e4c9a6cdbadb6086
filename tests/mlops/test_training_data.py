"""The fine-tuning set: title split, prompt format, abstention target, feedback rows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.mlops.qa import ABSTAIN, qa_prompt
from genai_factory.mlops.training.data import (
    SquadRecord,
    cap_unanswerable,
    feedback_examples,
    read_examples,
    read_squad,
    read_titles,
    split_by_titles,
    split_titles,
    squad_examples,
    write_examples,
)

SHARED_SQUAD = Path(__file__).resolve().parents[2].parent / "shared/datasets/squad_v2/qa.jsonl"


def _squad_file(path: Path, titles: list[str], per_title: int = 3) -> Path:
    rows = []
    for title in titles:
        for i in range(per_title):
            impossible = i == per_title - 1
            rows.append(
                {
                    "id": f"{title}-{i}",
                    "title": title,
                    "context": f"{title} was founded in 190{i} by people.",
                    "question": f"When was {title} founded ({i})?",
                    "is_impossible": impossible,
                    "answers": [] if impossible else [f"190{i}", f"in 190{i}"],
                }
            )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


TITLES = [f"Article_{c}" for c in "ABCDEFGH"]


def test_split_is_deterministic_and_disjoint() -> None:
    first = split_titles(TITLES, 0.5)
    again = split_titles(list(reversed(TITLES)) * 2, 0.5)
    assert first == again
    assert len(first.train) == len(first.heldout) == 4
    assert not set(first.train) & set(first.heldout)
    assert set(first.train) | set(first.heldout) == set(TITLES)
    # adding a title only moves that title: the split depends on names, not on positions
    assert split_titles(TITLES[:7], 0.25).heldout != ()


def test_split_rejects_bad_shares_and_single_titles() -> None:
    with pytest.raises(InvalidRequestError):
        split_titles(TITLES, 1.0)
    with pytest.raises(InvalidRequestError):
        split_titles(["only"], 0.5)
    assert len(split_titles(["a", "b"], 0.01).heldout) == 1  # always at least one of each


def _records(answerable: int, impossible: int) -> list[SquadRecord]:
    records = [
        SquadRecord(
            id=f"q{i:03d}",
            title="T",
            context="c",
            question=f"question {i}?",
            is_impossible=i >= answerable,
            answers=() if i >= answerable else ("a",),
            raw={},
        )
        for i in range(answerable + impossible)
    ]
    # interleave, so that order preservation is visible
    return records[::2] + records[1::2]


def test_cap_unanswerable_bounds_the_share_and_keeps_every_answerable() -> None:
    records = _records(answerable=30, impossible=30)
    kept = cap_unanswerable(records, 0.25, seed=0)
    impossible = [r for r in kept if r.is_impossible]
    assert [r for r in kept if not r.is_impossible] == [r for r in records if not r.is_impossible]
    assert len(impossible) == 10  # 10 of 40 = 0.25
    assert kept == [r for r in records if r in kept]  # the input order is kept
    # at most the share, rounding down: 30 answerable at 0.2 allow 7.5 -> 7
    assert sum(r.is_impossible for r in cap_unanswerable(records, 0.2)) == 7
    assert cap_unanswerable(records, 1.0) == records
    assert all(not r.is_impossible for r in cap_unanswerable(records, 0.0))
    # fewer unanswerable questions than allowed: all of them stay
    few = _records(answerable=30, impossible=3)
    assert cap_unanswerable(few, 0.25) == few


def test_cap_unanswerable_is_seeded_and_independent_of_file_order() -> None:
    records = _records(answerable=30, impossible=30)
    ids = {r.id for r in cap_unanswerable(records, 0.25, seed=0)}
    assert {r.id for r in cap_unanswerable(list(reversed(records)), 0.25, seed=0)} == ids
    assert {r.id for r in cap_unanswerable(records, 0.25, seed=0)} == ids
    assert {r.id for r in cap_unanswerable(records, 0.25, seed=1)} != ids
    for share in (-0.1, 1.1):
        with pytest.raises(InvalidRequestError):
            cap_unanswerable(records, share)


def test_squad_examples_use_the_evaluation_prompt_and_abstention(tmp_path: Path) -> None:
    records = read_squad(_squad_file(tmp_path / "qa.jsonl", ["Alpha"]))
    examples = squad_examples(records)
    expected = qa_prompt(records[0].context, records[0].question)
    assert [m["content"] for m in examples[0].messages] == [m.content for m in expected]
    assert [m["role"] for m in examples[0].messages] == [m.role for m in expected]
    assert examples[0].answer == "1900"
    assert examples[-1].answer == ABSTAIN  # the unanswerable question


def test_examples_round_trip_and_validation(tmp_path: Path) -> None:
    examples = squad_examples(read_squad(_squad_file(tmp_path / "qa.jsonl", ["Alpha", "Beta"])))
    out = tmp_path / "train.jsonl"
    assert write_examples(examples, out) == 6
    assert read_examples(out) == examples
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [], "answer": "x"}\n', encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="messages"):
        read_examples(bad)
    bad.write_text('{"messages": [{"role": "user", "content": "q"}], "answer": " "}\n')
    with pytest.raises(InvalidRequestError, match="answer"):
        read_examples(bad)
    bad.write_text("not json\n")
    with pytest.raises(InvalidRequestError, match="not JSON"):
        read_examples(bad)


def test_titles_from_file(tmp_path: Path) -> None:
    records = read_squad(_squad_file(tmp_path / "qa.jsonl", TITLES[:3]))
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": ["Article_A"], "heldout": ["x"]}))
    split = split_by_titles(records, read_titles(split_file))
    assert split.train == ("Article_A",)
    assert split.heldout == ("Article_B", "Article_C")
    lines = tmp_path / "titles.txt"
    lines.write_text("Article_B\n\nArticle_C\n")
    assert read_titles(lines) == ["Article_B", "Article_C"]
    with pytest.raises(InvalidRequestError, match="not in the data"):
        split_by_titles(records, ["Nope"])


def test_read_squad_rejects_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "q"}\n')
    with pytest.raises(InvalidRequestError, match="not SQuAD format"):
        read_squad(path)
    with pytest.raises(InvalidRequestError, match="no such file"):
        read_squad(tmp_path / "missing.jsonl")


@pytest.mark.skipif(not SHARED_SQUAD.is_file(), reason="shared SQuAD data not present")
def test_shared_squad_split_keeps_titles_apart() -> None:
    records = read_squad(SHARED_SQUAD)
    split = split_titles((r.title for r in records), 0.5)
    train_ids = {r.id for r in records if r.title in split.train}
    held_ids = {r.id for r in records if r.title in split.heldout}
    assert train_ids and held_ids and not train_ids & held_ids
    assert len(train_ids) + len(held_ids) == len(records)


def test_feedback_rows_are_the_liked_ones(fake_settings: Settings) -> None:
    from genai_factory.observability.interaction_store import (
        SqlInteractionLog,
        open_interaction_engine,
    )
    from genai_factory.observability.interactions import FeedbackRecord, InteractionRecord

    assert feedback_examples(fake_settings) == []  # no database yet: no rows, no file created
    assert not (fake_settings.data_dir / "gateway.db").exists()

    async def fill() -> None:
        log = SqlInteractionLog(open_interaction_engine(fake_settings.interaction_database_url()))
        records = [
            InteractionRecord(
                trace_id=f"t{i}",
                endpoint="generate",
                status="ok",
                request_text=f"question {i}",
                response_text=f"answer {i}",
            )
            for i in range(4)
        ]
        records.append(
            InteractionRecord(
                trace_id="t9",
                endpoint="generate",
                status="error",
                request_text="broken",
                response_text="",
            )
        )
        await log.record(records)
        for trace, rating in (("t0", 1), ("t0", 1), ("t1", -1), ("t2", 0), ("t3", 1), ("t9", 1)):
            await log.add_feedback(FeedbackRecord(trace_id=trace, rating=rating))
        await log.aclose()

    asyncio.run(fill())
    rows = feedback_examples(fake_settings)
    assert sorted(r.id for r in rows) == ["t0", "t3"]
    assert {r.answer for r in rows} == {"answer 0", "answer 3"}
    assert all(r.source == "feedback" and r.messages[0]["role"] == "user" for r in rows)
