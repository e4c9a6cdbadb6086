"""`genai-factory jobs`: Scheduled jobs: re-index, drift, the loop, the scheduler.

``jobs reindex`` builds a new index version from the configured sources, scores it against the
serving one and activates it only if it is not worse (``--force``: regardless); exit 0 when it
activated or deliberately kept the old version, 1 on error. ``jobs drift`` compares a reference and
a current window of the interaction log, prints the verdict (``--json``: machine-readable), writes
an HTML report with ``--report``; exit 0 no drift, 3 drift, 1 error. ``jobs scheduler`` runs the
jobs on ``mlops.schedules`` (``--list``: next run times, ``--once JOB``: run one job now); a bad
cron expression or an unknown job exits 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from genai_factory.command_runner import ConfigOption, err, run_command, stage_bars
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError

T = TypeVar("T")

jobs_app = typer.Typer(
    help="Scheduled jobs: re-index, drift, the loop, the scheduler.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
NoTrackOption = Annotated[bool, typer.Option("--no-track", help="Do not record the run in MLflow.")]
#: ``jobs drift`` exit code when drift was found.
EXIT_DRIFT = 3


def _fail(message: str, code: int) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _settings(config: Path | None, code: int = 1) -> Settings:
    from genai_factory.observability.logging import configure_logging

    try:
        settings = load_settings(config)
    except GenAIFactoryError as exc:
        _fail(exc.message, code)
        raise AssertionError("unreachable") from None
    # Logs go to stderr, so stdout carries only the command's output (``--json``).
    configure_logging("warning" if settings.log_level == "info" else settings.log_level)
    return settings


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a job; any package error is one ``error:`` line and exit 1 (a job failed)."""
    try:
        return run_command(work)
    except typer.Exit as exit_:
        if exit_.exit_code == 2:  # run_command's "caller error": for a job, still a failure
            raise typer.Exit(1) from None
        raise


# -- reindex -----------------------------------------------------------------------------------
@jobs_app.command("reindex")
def reindex_command(
    force: Annotated[
        bool, typer.Option("--force", help="Activate the new version even if it is worse.")
    ] = False,
    no_track: NoTrackOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a new index version; activate it only if it retrieves no worse than the active one."""
    from genai_factory.mlops.reindex import run_reindex

    settings = _settings(config)

    async def work() -> Any:
        with stage_bars(sys.stderr.isatty()) as stage:
            return await run_reindex(settings, force=force, track=not no_track, progress=stage)

    result = _run(work)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        typer.echo(result.summary())
        if result.registered_version is not None:
            typer.echo(
                f"registered as {settings.mlops.index_name} version {result.registered_version}"
                " (champion)"
            )


# -- drift -------------------------------------------------------------------------------------
def _timestamp(text: str | None) -> datetime | None:
    from genai_factory.mlops.drift import parse_timestamp

    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except GenAIFactoryError as exc:
        _fail(exc.message, 1)
        raise AssertionError("unreachable") from None


def _print_verdict(verdict: dict[str, Any]) -> None:
    windows = verdict["windows"]
    typer.echo(
        f"reference {windows['reference']['start'][:16]} → {windows['reference']['end'][:16]} "
        f"({verdict['samples']['reference']} requests); current "
        f"{windows['current']['start'][:16]} → {windows['current']['end'][:16]} "
        f"({verdict['samples']['current']} requests)"
    )
    for name, test in verdict["tests"].items():
        mark = "DRIFT" if test["drifted"] else "ok"
        typer.echo(
            f"  {name:24} {mark:5}  stat {test['statistic']:9.4g}  "
            f"p {test['p_value']:8.3g}  p(Holm) {test['p_adjusted']:8.3g}"
        )
    if verdict["insufficient"]:
        typer.echo(f"  not enough data: {', '.join(verdict['insufficient'])}")
    typer.echo("drift detected" if verdict["drift"] else "no drift detected")


@jobs_app.command("drift")
def drift_command(
    reference_start: Annotated[
        str | None, typer.Option("--reference-start", help="ISO 8601 start of the reference.")
    ] = None,
    current_start: Annotated[
        str | None, typer.Option("--current-start", help="ISO 8601 start of the current window.")
    ] = None,
    reference_hours: Annotated[
        float | None, typer.Option("--reference-hours", min=0.01, help="Reference length.")
    ] = None,
    current_hours: Annotated[
        float | None, typer.Option("--current-hours", min=0.01, help="Current window length.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report to this file.")
    ] = None,
    no_track: NoTrackOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two windows of the interaction log; exit 3 when drift is found."""
    from genai_factory.mlops.drift import detect_drift, resolve_windows, track_drift
    from genai_factory.mlops.drift_report import write_report
    from genai_factory.rag.embedding import get_embedder

    settings = _settings(config)

    async def work() -> tuple[dict[str, Any], str | None]:
        reference, current = resolve_windows(
            settings,
            reference_start=_timestamp(reference_start),
            current_start=_timestamp(current_start),
            reference_hours=reference_hours,
            current_hours=current_hours,
        )
        embedder = get_embedder(settings.embeddings)
        try:
            result = await detect_drift(settings, reference, current, embedder=embedder)
        finally:
            await embedder.aclose()
        written = write_report(result, report) if report is not None else None
        run_id = None if no_track else track_drift(settings, result, written)
        return result.verdict(), run_id

    verdict, run_id = _run(work)
    if run_id is not None:
        verdict["run_id"] = run_id
    if as_json:
        typer.echo(json.dumps(verdict))
    else:
        _print_verdict(verdict)
    if report is not None:
        err.print(f"[dim]report: {report}[/dim]", highlight=False)
    if verdict["drift"]:
        raise typer.Exit(EXIT_DRIFT)


# -- scheduler ---------------------------------------------------------------------------------
@jobs_app.command("scheduler")
def scheduler_command(
    list_only: Annotated[
        bool, typer.Option("--list", help="Show the jobs and their next run, then exit.")
    ] = False,
    once: Annotated[
        str | None, typer.Option("--once", help="Run this job now (its exit code is returned).")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the jobs of mlops.schedules on their cron expressions (UTC) until stopped."""
    from genai_factory.mlops.scheduler import build_scheduler, command_line, run_job, scheduled_jobs

    settings = _settings(config, code=2)
    try:
        if once is not None:
            raise typer.Exit(run_job(once, command_line(settings, once, config)))
        jobs = scheduled_jobs(settings, config=config)
        if list_only:
            if as_json:
                typer.echo(json.dumps([job.as_dict() for job in jobs], indent=2))
            elif not jobs:
                typer.echo("no job is scheduled (mlops.schedules is empty)")
            for job in [] if as_json else jobs:
                when = f"{job.next_run:%Y-%m-%d %H:%M} UTC" if job.next_run else "never"
                typer.echo(f"{job.name:12} {job.cron:16} next {when}  {' '.join(job.command[3:])}")
            return
        scheduler = build_scheduler(settings, config=config)
    except GenAIFactoryError as exc:
        _fail(exc.message, 2)
        return
    err.print(
        f"scheduler: {len(jobs)} job(s): "
        + ", ".join(f"{job.name} [{job.cron}]" for job in jobs)
        + " — Ctrl+C stops",
        highlight=False,
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


# -- loop --------------------------------------------------------------------------------------
@jobs_app.command("loop")
def loop_command(
    once: Annotated[
        bool,
        typer.Option(
            "--once/--no-once",
            help="Run one pass and exit (the scheduler repeats it: mlops.schedules.loop).",
        ),
    ] = True,
    train_data: Annotated[
        Path | None,
        typer.Option("--train-data", help="Also fine-tune a challenger LLM on this JSONL file."),
    ] = None,
    train_steps: Annotated[
        int | None, typer.Option("--train-steps", min=1, help="Training steps (default 150).")
    ] = None,
    suite: Annotated[
        Path | None,
        typer.Option("--suite", help="Evaluation suite gating the promotion (mlops.eval_suite)."),
    ] = None,
    no_reindex: Annotated[
        bool, typer.Option("--no-reindex", help="Do not rebuild the index on drift.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Act even when no drift is found.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the drift report (HTML) here.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One pass: drift → re-index and/or fine-tune → evaluate → promote, all recorded in MLflow."""
    from genai_factory.mlops.loop import run_loop

    if not once:
        _fail("the loop runs one pass at a time; schedule it with mlops.schedules.loop", 2)

    settings = _settings(config)

    def show(step: str) -> None:
        err.print(f"[bold]loop[/bold] → {step}", highlight=False)

    async def work() -> Any:
        return await run_loop(
            settings,
            train_data=train_data,
            train_steps=train_steps,
            suite=suite,
            reindex=not no_reindex,
            force=force,
            report=report,
            on_step=show,
        )

    result = _run(work)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        typer.echo(result.summary())
        err.print(f"[dim]MLflow run {result.run_id}[/dim]", highlight=False)
