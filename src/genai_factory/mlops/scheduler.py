"""``jobs scheduler``: run the MLOps jobs on the cron expressions of ``mlops.schedules``.

Each job runs as a subprocess of the ``genai-factory`` CLI — exactly the command an operator, a
Kubernetes CronJob (``deploy/k8s/``) or the Airflow DAG (``deploy/airflow/``) would run — so a job
that crashes, leaks memory or loads a model cannot take the scheduler down with it, and every
deployment shares one code path. APScheduler 3.x runs the triggers: ``CronTrigger.from_crontab``
(five fields, UTC), ``max_instances=1`` (a job never overlaps itself) and ``coalesce=True`` (runs
missed while the scheduler was down or a job was still running collapse into one).

Exit codes of a run are logged: ``jobs drift`` exits 3 when it found drift, which is an outcome,
not a failure.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from genai_factory import components
from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError, InvalidRequestError

log = structlog.get_logger(__name__)

#: The CLI command of each job (``genai-factory <words>``): the table of :mod:`~genai_factory.components`.
JOB_COMMANDS = components.JOBS
#: Arguments a job needs when ``mlops.job_args`` gives none.
DEFAULT_ARGS: dict[str, tuple[str, ...]] = {"train_guard": ("--guard", "injection")}
#: Exit codes that are outcomes rather than failures, per job.
OUTCOMES: dict[str, dict[int, str]] = {"drift": {0: "no drift", 3: "drift detected"}}

Runner = Callable[[Sequence[str]], int]


@dataclass(frozen=True)
class ScheduledJob:
    """One configured job: its cron expression, its command line and its next run."""

    name: str
    cron: str
    command: tuple[str, ...]
    next_run: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "cron": self.cron,
            "command": list(self.command),
            "next_run": self.next_run.isoformat() if self.next_run else None,
        }


def cron_trigger(job: str, expression: str) -> Any:
    """``CronTrigger.from_crontab`` in UTC; a bad expression is a :class:`ConfigurationError`."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except ValueError as exc:
        raise ConfigurationError(
            f"mlops.schedules.{job}: {expression!r} is not a cron expression "
            f"(minute hour day month weekday): {exc}"
        ) from exc


def command_line(settings: Settings, job: str, config: Path | None = None) -> tuple[str, ...]:
    """The full command line of ``job``: this interpreter running the CLI, plus its arguments."""
    if job not in JOB_COMMANDS:
        raise InvalidRequestError(components.unknown_name("job", job, JOB_COMMANDS))
    extra = settings.mlops.job_args.get(job)
    args = tuple(extra) if extra is not None else DEFAULT_ARGS.get(job, ())
    prefix = (sys.executable, "-m", "genai_factory.cli", *JOB_COMMANDS[job], *args)
    return (*prefix, "--config", str(config)) if config is not None else prefix


def scheduled_jobs(
    settings: Settings, *, config: Path | None = None, now: datetime | None = None
) -> list[ScheduledJob]:
    """Every configured job with its next run after ``now`` (validates every expression)."""
    moment = now or datetime.now(tz=UTC)
    jobs = []
    for name, expression in settings.mlops.schedules.items():
        trigger = cron_trigger(name, expression)
        jobs.append(
            ScheduledJob(
                name=name,
                cron=expression,
                command=command_line(settings, name, config),
                next_run=trigger.get_next_fire_time(None, moment),
            )
        )
    return sorted(jobs, key=lambda j: (j.next_run is None, j.next_run or moment, j.name))


def run_subprocess(command: Sequence[str]) -> int:
    """Run one job's command, its output going to this process's stdout/stderr."""
    return subprocess.run(list(command), check=False).returncode


def run_job(name: str, command: Sequence[str], runner: Runner = run_subprocess) -> int:
    """Run one job now and log how it ended; returns its exit code."""
    started = time.monotonic()
    log.info("job started", job=name, command=" ".join(command))
    try:
        code = runner(command)
    except OSError as exc:
        log.error("job could not start", job=name, error=str(exc))
        return 1
    elapsed = round(time.monotonic() - started, 1)
    outcome = OUTCOMES.get(name, {0: "ok"}).get(code)
    if outcome is None:
        log.error("job failed", job=name, exit_code=code, seconds=elapsed)
    else:
        log.info("job finished", job=name, exit_code=code, outcome=outcome, seconds=elapsed)
    return code


def build_scheduler(
    settings: Settings,
    *,
    config: Path | None = None,
    runner: Runner = run_subprocess,
    scheduler: Any = None,
) -> Any:
    """A scheduler (by default a ``BlockingScheduler``) with every configured job added."""
    if not settings.mlops.schedules:
        raise ConfigurationError("no job is scheduled: set mlops.schedules (job name → cron)")
    if scheduler is None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(timezone=UTC)
    for job in scheduled_jobs(settings, config=config):
        scheduler.add_job(
            run_job,
            trigger=cron_trigger(job.name, job.cron),
            args=(job.name, job.command, runner),
            id=job.name,
            name=f"genai-factory {' '.join(JOB_COMMANDS[job.name])}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
            replace_existing=True,
        )
    return scheduler
