"""``genai-factory jobs loop --once``: drift → re-index and/or fine-tune → evaluate → promote.

One pass of the MLOps loop, recorded as one MLflow run (job ``loop``) with every step's own run
(drift, re-index, training, suite) as its children:

1. **drift** — compare the reference and current windows of the interaction log
   (:mod:`genai_factory.mlops.drift`). Without drift (or without enough traffic to tell) the pass
   stops here, unless ``force``.
2. **re-index** — build a new index version from ``mlops.reindex.sources`` and activate it only if
   it retrieves no worse than the serving one (:mod:`genai_factory.mlops.reindex`; that job is its
   own gate). The serving process follows the activation by itself.
3. **fine-tune** — when training data is given, LoRA-train a challenger LLM
   (:mod:`genai_factory.mlops.training`).
4. **evaluate and promote** — run the evaluation suite (``mlops.eval_suite``) on the version the
   training step registered (whatever the suite names as challenger) against the champion; promote
   it only when every gate passes. The service swaps to a promoted champion without a restart
   (:mod:`genai_factory.mlops.champion`).

Every step records its wall time (``seconds``), and the pass its total.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError

log = structlog.get_logger(__name__)

#: Called with a step's name when it starts (progress display).
StepHook = Callable[[str], None]


@dataclass
class LoopStep:
    """One step of a pass: what ran, what it decided, its MLflow run and its wall time."""

    name: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0


@dataclass
class LoopResult:
    """What one pass did."""

    drift: bool
    acted: bool
    steps: list[LoopStep] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{step.name:10} {step.seconds:7.1f} s  {step.outcome}" for step in self.steps]
        if self.promoted:
            lines.append("promoted: " + ", ".join(self.promoted))
        elif self.acted:
            lines.append("nothing promoted")
        lines.append(f"{'total':10} {self.seconds:7.1f} s")
        return "\n".join(lines)


async def _timed(work: Awaitable[LoopStep]) -> LoopStep:
    """Run one step and record its wall time on it."""
    started = time.perf_counter()
    step = await work
    step.seconds = round(time.perf_counter() - started, 1)
    return step


def _is_file(path: Path) -> bool:
    return path.is_file()


def _suite_path(settings: Settings, suite: Path | None) -> Path:
    path = suite or settings.mlops.eval_suite
    if path is None:
        raise ConfigurationError(
            "fine-tuning in the loop needs an evaluation suite to gate the promotion: "
            "pass --suite or set mlops.eval_suite"
        )
    if not path.is_file():
        raise ConfigurationError(f"evaluation suite not found: {path}")
    return path


async def _drift_step(settings: Settings, report: Path | None) -> LoopStep:
    from genai_factory.mlops.drift import detect_drift, resolve_windows, track_drift
    from genai_factory.mlops.drift_report import write_report
    from genai_factory.rag.embedding import get_embedder

    reference, current = resolve_windows(settings)
    embedder = get_embedder(settings.embeddings)
    try:
        result = await detect_drift(settings, reference, current, embedder=embedder)
    finally:
        await embedder.aclose()
    written = write_report(result, report) if report is not None else None
    run_id = track_drift(settings, result, written)
    verdict = result.verdict()
    drifted = [name for name, test in verdict["tests"].items() if test["drifted"]]
    outcome = "drift: " + ", ".join(drifted) if result.drift else "no drift"
    if verdict["insufficient"]:
        outcome += f" (not enough data for {', '.join(verdict['insufficient'])})"
    detail = {
        "drift": result.drift,
        "samples": verdict["samples"],
        "drifted": drifted,
        "report": str(report or ""),
    }
    return LoopStep("drift", outcome, detail, run_id)


async def _reindex_step(settings: Settings) -> LoopStep:
    from genai_factory.mlops.reindex import run_reindex

    result = await run_reindex(settings, track=True)
    detail = {
        "version": result.version_id,
        "previous": result.previous_id,
        "new": result.new_metrics,
        "old": result.old_metrics,
        "registered_version": result.registered_version,
        "activated": result.activated,
    }
    outcome = "; ".join(line for line in result.summary().splitlines()[:3] if line)
    return LoopStep("reindex", outcome, detail, result.run_id)


async def _train_step(settings: Settings, data: Path, steps: int | None) -> LoopStep:
    from genai_factory.mlops.training.finetune import train_llm
    from genai_factory.mlops.training.lora import LoraSettings

    lora = LoraSettings() if steps is None else LoraSettings(steps=steps)
    result = await asyncio.to_thread(train_llm, settings, data, lora)
    detail = {
        "version": result.registered_version,
        "steps": lora.steps,
        "examples": result.examples,
        "skipped_too_long": result.skipped_too_long,
        "first_loss": result.first_loss,
        "last_loss": result.last_loss,
        "train_seconds": result.train_seconds,
    }
    outcome = (
        f"challenger version {result.registered_version} trained on {result.examples} examples"
        f" ({lora.steps} steps, loss {result.first_loss:.2f} → {result.last_loss:.2f})"
    )
    return LoopStep("train", outcome, detail, result.run_id)


async def _evaluate_step(settings: Settings, suite: Path, version: int | None) -> LoopStep:
    from genai_factory.mlops.evaluation import arun_suite
    from genai_factory.mlops.registry import ModelRegistry

    # The version just trained is what may be promoted, so it is what the suite evaluates.
    challenger = None if version is None else str(version)
    result = await arun_suite(settings, suite, track=True, challenger=challenger)
    detail: dict[str, Any] = {
        "candidates": result.candidates,
        "gates": [gate.line() for gate in result.gates],
        "failures": result.failures,
        "notes": result.notes,
    }
    if not result.passed:
        return LoopStep(
            "evaluate", "gates failed: " + "; ".join(result.failures), detail, result.run_id
        )
    if version is None:
        return LoopStep("evaluate", "gates passed", detail, result.run_id)
    registry = ModelRegistry(settings)
    await asyncio.to_thread(registry.promote, settings.mlops.llm_name, version)
    detail["promoted"] = version
    return LoopStep(
        "evaluate", f"gates passed: version {version} promoted to champion", detail, result.run_id
    )


async def _act(
    settings: Settings,
    result: LoopResult,
    announce: StepHook,
    *,
    reindex: bool,
    train_data: Path | None,
    train_steps: int | None,
    suite_path: Path | None,
) -> None:
    """The steps after the drift check, each appended to ``result`` with its wall time."""
    if reindex:
        announce("reindex")
        step = await _timed(_reindex_step(settings))
        result.steps.append(step)
        if step.detail["activated"] and step.detail["registered_version"] is not None:
            result.promoted.append(
                f"{settings.mlops.index_name} v{step.detail['registered_version']}"
            )
    if train_data is None or suite_path is None:
        return
    announce("train")
    trained = await _timed(_train_step(settings, train_data, train_steps))
    result.steps.append(trained)
    announce("evaluate")
    evaluated = await _timed(_evaluate_step(settings, suite_path, trained.detail["version"]))
    result.steps.append(evaluated)
    if "promoted" in evaluated.detail:
        result.promoted.append(f"{settings.mlops.llm_name} v{evaluated.detail['promoted']}")


async def run_loop(
    settings: Settings,
    *,
    train_data: Path | None = None,
    train_steps: int | None = None,
    suite: Path | None = None,
    reindex: bool = True,
    force: bool = False,
    report: Path | None = None,
    on_step: StepHook | None = None,
) -> LoopResult:
    """One pass of the loop (see the module docstring). Errors propagate as package errors."""
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    suite_path = _suite_path(settings, suite) if train_data is not None else None
    if train_data is not None and not _is_file(train_data):
        raise ConfigurationError(f"training data not found: {train_data}")
    mlflow = import_mlflow()
    started = time.perf_counter()

    def announce(name: str) -> None:
        if on_step is not None:
            on_step(name)

    with tracked_run(settings, "loop", job="loop") as run:
        announce("drift")
        drift_step = await _timed(_drift_step(settings, report))
        drifted = bool(drift_step.detail["drift"])
        result = LoopResult(drift=drifted, acted=drifted or force, steps=[drift_step])
        result.run_id = str(run.info.run_id)
        if result.acted:
            await _act(
                settings,
                result,
                announce,
                reindex=reindex,
                train_data=train_data,
                train_steps=train_steps,
                suite_path=suite_path,
            )
        else:
            result.steps.append(LoopStep("act", "skipped: no drift"))
        result.seconds = round(time.perf_counter() - started, 1)
        mlflow.set_tags(
            {
                "loop.drift": str(result.drift).lower(),
                "loop.acted": str(result.acted).lower(),
                "loop.promoted": ", ".join(result.promoted) or "none",
            }
        )
        for step in result.steps:
            if step.run_id:
                mlflow.set_tag(f"loop.step.{step.name}.run_id", step.run_id)
        mlflow.log_metrics({f"{step.name}_seconds": step.seconds for step in result.steps})
        mlflow.log_metric("seconds", result.seconds)
        mlflow.log_dict(result.as_dict(), "loop.json")
    log.info("loop_finished", drift=result.drift, promoted=result.promoted)
    return result
