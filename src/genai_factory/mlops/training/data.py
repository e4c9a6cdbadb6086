"""The fine-tuning set: grounded SQuAD questions of some articles plus well-rated interactions.

SQuAD questions are split **by article title**, never by question: a question about an article the
model was trained on says little about how it answers on unseen text. The split is deterministic
(titles ordered by the SHA-256 of their name, independent of file order) so that ``train data`` and
a later evaluation agree on which articles were held out without sharing state; ``--titles-from``
pins the training titles explicitly instead.

Every row is a chat (``messages``) and the ``answer`` the assistant should give. SQuAD rows use the
exact prompt the evaluation uses (:func:`genai_factory.mlops.qa.qa_prompt`), so the model learns
the format it is measured with; unanswerable questions teach the abstention answer. About half of
SQuAD 2.0 is unanswerable, and training on that mix taught the model to abstain rather than to
extract (fewer answers, lower F1 on the answerable questions), so :func:`cap_unanswerable` keeps
only a seeded sample of them. Interaction-log rows are requests whose answer got a positive rating
(``interaction_feedback.rating > 0``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError, InvalidRequestError

#: Default upper bound on the share of unanswerable SQuAD rows in the training set (see the
#: "Fine-tuning" section of ``docs/mlops.md`` for the runs behind it).
DEFAULT_UNANSWERABLE_SHARE = 0.25

#: Fields every SQuAD-format record must have (``/work/shared/datasets/squad_v2/qa.jsonl``).
SQUAD_FIELDS = ("id", "title", "context", "question", "is_impossible", "answers")


@dataclass(frozen=True)
class SquadRecord:
    """One SQuAD 2.0 question with its paragraph and gold answers (empty when unanswerable)."""

    id: str
    title: str
    context: str
    question: str
    is_impossible: bool
    answers: tuple[str, ...]
    raw: dict[str, Any]


@dataclass(frozen=True)
class TitleSplit:
    """Which article titles are trained on and which are kept for evaluation."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "heldout": list(self.heldout)}


@dataclass(frozen=True)
class TrainingExample:
    """One chat to learn from: the model sees ``messages`` and is trained to reply ``answer``."""

    messages: tuple[dict[str, str], ...]
    answer: str
    source: str
    id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "messages": list(self.messages),
            "answer": self.answer,
        }


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidRequestError(f"no such file: {path}")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRequestError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InvalidRequestError(f"{path}:{number}: expected a JSON object")
            rows.append(row)
    if not rows:
        raise InvalidRequestError(f"{path} holds no records")
    return rows


def read_squad(path: Path) -> list[SquadRecord]:
    """SQuAD-format JSONL records (one question per line).

    Raises:
        InvalidRequestError: the file is missing, empty, not JSONL, or a record lacks a field.
    """
    records: list[SquadRecord] = []
    for number, row in enumerate(_read_jsonl(path), start=1):
        missing = [name for name in SQUAD_FIELDS if name not in row]
        if missing:
            raise InvalidRequestError(
                f"{path}: record {number} is not SQuAD format (missing {', '.join(missing)})"
            )
        records.append(
            SquadRecord(
                id=str(row["id"]),
                title=str(row["title"]),
                context=str(row["context"]),
                question=str(row["question"]),
                is_impossible=bool(row["is_impossible"]),
                answers=tuple(str(a) for a in row["answers"] or ()),
                raw=row,
            )
        )
    return records


def _title_rank(title: str) -> str:
    return hashlib.sha256(title.encode("utf-8")).hexdigest()


def split_titles(titles: Iterable[str], holdout_share: float = 0.5) -> TitleSplit:
    """Hold out ``holdout_share`` of the distinct titles (at least one of each side when possible).

    Titles are ordered by the SHA-256 of their name, so the split depends on the set of titles
    only, not on the order of the file or on a random seed.
    """
    if not 0.0 < holdout_share < 1.0:
        raise InvalidRequestError("the held-out share must be strictly between 0 and 1")
    ordered = sorted(set(titles), key=_title_rank)
    if len(ordered) < 2:
        raise InvalidRequestError("splitting by title needs at least two distinct titles")
    held = min(max(1, math.floor(len(ordered) * holdout_share + 0.5)), len(ordered) - 1)
    return TitleSplit(train=tuple(sorted(ordered[held:])), heldout=tuple(sorted(ordered[:held])))


def read_titles(path: Path) -> list[str]:
    """Training titles from a split file (``{"train": [...]}``) or a text file, one per line."""
    if not path.is_file():
        raise InvalidRequestError(f"no such file: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"{path}: not JSON ({exc.msg})") from None
        titles = data.get("train") if isinstance(data, dict) else data
        if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
            raise InvalidRequestError(f'{path}: expected {{"train": [titles]}} or a list')
        return titles
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_by_titles(records: Sequence[SquadRecord], train_titles: Iterable[str]) -> TitleSplit:
    """The split that trains on ``train_titles`` (each must occur in ``records``)."""
    present = {r.title for r in records}
    wanted = set(train_titles)
    unknown = sorted(wanted - present)
    if unknown:
        raise InvalidRequestError(f"titles not in the data: {', '.join(unknown[:5])}")
    if not wanted:
        raise InvalidRequestError("no training title given")
    return TitleSplit(train=tuple(sorted(wanted)), heldout=tuple(sorted(present - wanted)))


def cap_unanswerable(
    records: Sequence[SquadRecord], share: float, seed: int = 0
) -> list[SquadRecord]:
    """Keep every answerable record and at most ``share`` of the result unanswerable.

    ``share`` is an upper bound, not a target: when there are fewer unanswerable records than it
    allows, all are kept (``1.0`` keeps everything, ``0.0`` drops them all). The unanswerable
    records kept are a sample drawn with ``seed`` from the records ordered by id, so the choice
    depends on the records and the seed only, not on the file order; the result keeps the input
    order.
    """
    if not 0.0 <= share <= 1.0:
        raise InvalidRequestError("the unanswerable share must be between 0 and 1")
    impossible = sorted((r for r in records if r.is_impossible), key=lambda r: r.id)
    answerable = len(records) - len(impossible)
    if share >= 1.0:
        allowed = len(impossible)
    else:
        allowed = min(len(impossible), math.floor(share * answerable / (1.0 - share) + 1e-9))
    kept = {id(r) for r in random.Random(seed).sample(impossible, allowed)}
    return [r for r in records if not r.is_impossible or id(r) in kept]


def squad_examples(records: Iterable[SquadRecord]) -> list[TrainingExample]:
    """Grounded QA rows in the evaluation's prompt format, taught the evaluation's target answer."""
    from genai_factory.mlops.qa import qa_prompt, qa_target

    return [
        TrainingExample(
            messages=tuple(
                {"role": m.role, "content": m.content} for m in qa_prompt(r.context, r.question)
            ),
            answer=qa_target([] if r.is_impossible else list(r.answers)),
            source="squad",
            id=r.id,
        )
        for r in records
    ]


def _sqlite_file_missing(url: str) -> bool:
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    database = parsed.database
    return (
        parsed.get_backend_name() == "sqlite"
        and bool(database)
        and database != ":memory:"
        and not Path(str(database)).is_file()
    )


def feedback_examples(settings: Settings, *, limit: int = 10_000) -> list[TrainingExample]:
    """Requests whose answer was rated positively, newest first, one row per trace.

    Rows without stored texts (``observability.store_text = false``) are skipped. A missing
    embedded database means no feedback yet, not an error.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from genai_factory.observability.interaction_store import (
        feedback_table,
        interactions_table,
        open_interaction_engine,
    )

    url = settings.interaction_database_url()
    if _sqlite_file_missing(url):
        return []
    liked = (
        sa.select(feedback_table.c.trace_id)
        .group_by(feedback_table.c.trace_id)
        .having(sa.func.max(feedback_table.c.rating) > 0)
        .subquery()
    )
    query = (
        sa.select(
            interactions_table.c.trace_id,
            interactions_table.c.request_text,
            interactions_table.c.response_text,
        )
        .join(liked, liked.c.trace_id == interactions_table.c.trace_id)
        .where(interactions_table.c.status == "ok")
        .order_by(interactions_table.c.id.desc())
        .limit(limit)
    )
    engine = open_interaction_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"cannot read the interaction log: {exc}") from exc
    finally:
        engine.dispose()
    seen: set[str] = set()
    examples: list[TrainingExample] = []
    for trace_id, request, response in rows:
        if trace_id in seen or not request.strip() or not response.strip():
            continue
        seen.add(trace_id)
        examples.append(
            TrainingExample(
                messages=({"role": "user", "content": request},),
                answer=response,
                source="feedback",
                id=trace_id,
            )
        )
    return examples


def write_examples(examples: Iterable[TrainingExample], out: Path) -> int:
    """Write JSONL (one example per line) atomically; returns how many were written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    count = 0
    with partial.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    partial.replace(out)
    return count


def write_records(records: Iterable[SquadRecord], out: Path) -> int:
    """Write SQuAD records unchanged (the held-out questions, for ``eval qa``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.raw, ensure_ascii=False) + "\n")
            count += 1
    return count


def _message(value: Any, where: str) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or value.get("role") not in ("system", "user", "assistant")
        or not isinstance(value.get("content"), str)
    ):
        raise InvalidRequestError(f"{where}: each message needs a role and a string content")
    return {"role": value["role"], "content": value["content"]}


def read_examples(path: Path) -> list[TrainingExample]:
    """Training rows written by :func:`write_examples` (or by hand, same fields).

    Raises:
        InvalidRequestError: missing file, bad JSON, or a row without messages or answer.
    """
    examples: list[TrainingExample] = []
    for number, row in enumerate(_read_jsonl(path), start=1):
        where = f"{path}:{number}"
        messages = row.get("messages")
        answer = row.get("answer")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequestError(f"{where}: 'messages' must be a non-empty list")
        if not isinstance(answer, str) or not answer.strip():
            raise InvalidRequestError(f"{where}: 'answer' must be a non-empty string")
        examples.append(
            TrainingExample(
                messages=tuple(_message(m, where) for m in messages),
                answer=answer,
                source=str(row.get("source", "file")),
                id=str(row.get("id", number)),
            )
        )
    return examples


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
