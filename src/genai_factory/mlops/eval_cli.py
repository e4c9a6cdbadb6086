"""``genai-factory eval run SUITE.yaml`` and ``genai-factory eval qa``.

``eval run`` runs a suite (``mlops/suite.py``), logs it to MLflow and exits 1 when a gate fails,
printing each failed gate. ``eval qa`` scores one model on SQuAD-format questions and prints EM,
F1 and abstention accuracy (``--json``: one JSON object). Both record an MLflow run unless
``--no-track``. Errors print one ``error:`` line (exit 2 for bad input).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from genai_factory.command_runner import ConfigOption, err, run_command
from genai_factory.config import load_settings

if TYPE_CHECKING:
    from genai_factory.mlops.qa_eval import QAReport
    from genai_factory.mlops.suite import SuiteResult

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TrackOption = Annotated[
    bool, typer.Option("--track/--no-track", help="Record an MLflow run (default: on).")
]

_QA_LINES = (
    ("exact_match", "exact match"),
    ("f1", "F1"),
    ("has_answer_f1", "F1 (answerable)"),
    ("abstention_accuracy", "abstention accuracy"),
    ("answered_rate", "answered rate"),
    ("hallucination_rate", "hallucination rate"),
    ("bleu", "BLEU"),
    ("rouge_l", "ROUGE-L"),
    ("latency_p50_ms", "latency p50 ms"),
    ("latency_p95_ms", "latency p95 ms"),
)


def _print_qa(report: QAReport, run_id: str | None) -> None:
    mode = "with context" if report.with_context else "closed-book"
    n = int(report.metrics["n"])
    typer.echo(f"{report.model_ref} ({report.model}) on {n} questions, {mode}")
    for key, label in _QA_LINES:
        typer.echo(f"  {label:21} {report.metrics[key]:.4f}")
    if run_id:
        err.print(f"[dim]MLflow run {run_id}[/dim]", highlight=False)


def eval_qa(
    dataset: Annotated[Path, typer.Option("--dataset", help="SQuAD-format questions (.jsonl).")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="default (what the service serves unpromoted: the model and its adapter) | "
            "base (the bare base model) | champion | challenger | a version number | a .gguf "
            "model or adapter path.",
        ),
    ] = "default",
    with_context: Annotated[
        bool,
        typer.Option(
            "--with-context/--closed-book",
            help="The service's RAG prompt with the gold paragraph as source [1], or its chat "
            "prompt with the question alone.",
        ),
    ] = True,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="A fixed sample: N questions (sorted, seed shuffle)."),
    ] = None,
    titles: Annotated[
        list[str] | None, typer.Option("--title", help="Only questions of this article (repeat).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Shuffle seed of the sample.")] = 0,
    answers_out: Annotated[
        Path | None,
        typer.Option(
            "--answers-out",
            help="Also write every question's answer and score here (JSON Lines), to inspect.",
        ),
    ] = None,
    track: TrackOption = True,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Exact match, F1 and abstention accuracy of one model on SQuAD-format questions."""
    from genai_factory.mlops.evaluation import aevaluate_qa, log_qa_report

    async def work() -> tuple[QAReport, str | None]:
        settings = load_settings(config)
        report = await aevaluate_qa(
            settings,
            dataset,
            model_ref=model,
            with_context=with_context,
            limit=limit,
            titles=tuple(titles or ()),
            seed=seed,
            progress=sys.stderr.isatty(),
        )
        run_id = log_qa_report(settings, report) if track else None
        return report, run_id

    report, run_id = run_command(work)
    if answers_out is not None:
        _write_answers(answers_out, report.answers)
    if as_json:
        payload: dict[str, Any] = {**report.as_dict(), "run_id": run_id}
        typer.echo(json.dumps(payload))
        return
    _print_qa(report, run_id)


def _write_answers(path: Path, answers: list[dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for record in answers:
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    except OSError as exc:
        err.print(f"[red]cannot write {path}: {exc.strerror or exc}[/red]", highlight=False)
        raise typer.Exit(1) from None


def _print_suite(result: SuiteResult) -> None:
    typer.echo(
        f"suite {result.name}: challenger {result.candidates['challenger']} vs champion "
        f"{result.candidates['champion'] or '-'}"
    )
    for name, value in sorted(result.metrics.items()):
        base = (result.champion_metrics or {}).get(name)
        versus = f"   (champion {base:.4f})" if base is not None else ""
        typer.echo(f"  {name:36} {value:12.4f}{versus}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for gate in result.gates:
        typer.echo(gate.line())
    typer.echo("gates passed" if result.passed else "GATES FAILED")


def eval_run(
    suite: Annotated[Path, typer.Argument(help="The suite YAML file.")],
    track: TrackOption = True,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an evaluation suite; exit 1 when a gate fails (each failed gate is printed)."""
    from genai_factory.mlops.evaluation import arun_suite

    async def work() -> SuiteResult:
        settings = load_settings(config)
        return await arun_suite(settings, suite, track=track, progress=sys.stderr.isatty())

    result = run_command(work)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        _print_suite(result)
    if not result.passed:
        for failure in result.failures:
            err.print(f"[red]gate failed:[/red] {failure}", highlight=False)
        raise typer.Exit(1)
