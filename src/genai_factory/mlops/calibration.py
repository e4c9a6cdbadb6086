"""Calibrating how readily the served model declines when it answers from sources.

A model fine-tuned to answer from numbered sources or to decline ("I don't know: the sources do
not say.") trades answering for declining through one number: the logit of the decline's first
token at the first answer token. ``llm.decline_shift`` adds a constant to it
(:class:`~genai_factory.llm.llamacpp.FirstTokenShift`); this module picks that constant on
SQuAD-format questions held out from training.

One pass asks every question once (:meth:`~genai_factory.llm.llamacpp.LlamaCppModel.probe_decline`):
it records the first-token gap (decline logit minus the best other logit) and the greedy reply
with declining banned at the first token. Under greedy decoding a shift ``s`` declines exactly
when ``gap + s > 0`` (or when the banned reply declines in other words), and otherwise answers the
banned reply, so every shift of a grid is scored from that one pass with the SQuAD 2.0 scores of
``eval qa`` (:func:`~genai_factory.mlops.qa.qa_metrics`). The chosen shift is the one with the best
F1 on the answerable questions among those whose abstention accuracy on the unanswerable ones is
at least ``min_abstention`` (the one closest to 0 on ties); when none reaches it, the shift that
abstains most. Calibrate on other questions than the ones you evaluate on (``--skip``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_factory.exceptions import InvalidRequestError
from genai_factory.messages import ChatOptions
from genai_factory.mlops.qa import abstained, extract_answer, qa_metrics

if TYPE_CHECKING:
    from genai_factory.config import Settings
    from genai_factory.llm.llamacpp import LlamaCppModel
    from genai_factory.mlops.qa_eval import QAItem

#: Shifts tried: -8 to +4 in steps of 0.25.
GRID: tuple[float, ...] = tuple(step / 4 for step in range(-32, 17))
#: What a declined question is scored as (any decline scores the same).
DECLINED = "I don't know: the sources do not say."
#: The abstention accuracy the chosen shift must keep by default (a margin above 0.5).
DEFAULT_MIN_ABSTENTION = 0.55


@dataclass(frozen=True)
class Probed:
    """One question after the probe: its gold answers (none: unanswerable), gap and answer."""

    answers: tuple[str, ...]
    gap: float
    answer: str

    def declines(self, shift: float) -> bool:
        return self.gap + shift > 0 or abstained(self.answer)


@dataclass
class Calibration:
    """The chosen shift, its scores and those of every shift tried."""

    shift: float
    metrics: dict[str, float]
    unshifted: dict[str, float]
    min_abstention: float
    questions: int
    table: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        keep = ("f1", "has_answer_f1", "abstention_accuracy", "answered_rate")
        return {
            "shift": self.shift,
            "min_abstention": self.min_abstention,
            "questions": self.questions,
            "chosen": {k: round(self.metrics[k], 4) for k in keep},
            "unshifted": {k: round(self.unshifted[k], 4) for k in keep},
        }


def scores_at(probes: Sequence[Probed], shift: float) -> dict[str, float]:
    """The SQuAD 2.0 scores the model would get with ``shift`` (see the module doc)."""
    predictions = [DECLINED if p.declines(shift) else p.answer for p in probes]
    return qa_metrics(predictions, [p.answers for p in probes])


def choose_shift(
    probes: Sequence[Probed],
    *,
    min_abstention: float = DEFAULT_MIN_ABSTENTION,
    grid: Sequence[float] = GRID,
) -> Calibration:
    """The shift with the best answerable F1 that keeps ``min_abstention`` (module doc)."""
    if not probes:
        raise InvalidRequestError("no questions to calibrate on")
    if not any(p.answers for p in probes) or all(p.answers for p in probes):
        raise InvalidRequestError(
            "calibration needs both answerable and unanswerable questions (SQuAD 2.0 format)"
        )
    table = [{"shift": s, **scores_at(probes, s)} for s in grid]
    keeping = [row for row in table if row["abstention_accuracy"] >= min_abstention]
    if keeping:
        best = max(keeping, key=lambda row: (row["has_answer_f1"], -abs(row["shift"])))
    else:
        best = max(table, key=lambda row: (row["abstention_accuracy"], -abs(row["shift"])))
    return Calibration(
        shift=best["shift"],
        metrics={k: v for k, v in best.items() if k != "shift"},
        unshifted=scores_at(probes, 0.0),
        min_abstention=min_abstention,
        questions=len(probes),
        table=table,
    )


async def probe_all(
    settings: Settings,
    model: LlamaCppModel,
    items: Sequence[QAItem],
    *,
    tick: Callable[[], None] | None = None,
) -> list[Probed]:
    """Ask every question once in the service's RAG prompt (see the module doc)."""
    from genai_factory.mlops.qa_eval import QA_OPTIONS, service_prompt

    options: ChatOptions = QA_OPTIONS
    probes = []
    for item in items:
        probe = await model.probe_decline(
            service_prompt(settings, item, with_context=True), options
        )
        probes.append(Probed(item.answers, probe.gap, extract_answer(probe.text)))
        if tick is not None:
            tick()
    return probes


def write_shift(adapter: Path, calibration: Calibration, *, source: str) -> Path:
    """Store the chosen shift beside ``adapter`` (``decline_shift`` in ``<adapter>.json``, which
    the service reads; other keys of that file are kept)."""
    path = adapter.with_suffix(".json")
    record: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InvalidRequestError(f"{path} is not JSON: {exc}") from None
        if isinstance(loaded, dict):
            record = loaded
    record["decline_shift"] = calibration.shift
    record["decline_calibration"] = {**calibration.as_dict(), "dataset": source}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path
