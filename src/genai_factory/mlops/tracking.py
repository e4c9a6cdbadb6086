"""MLflow tracking for every MLOps job: where runs go, and what each run is tagged with.

Embedded default: ``sqlite:///<data_dir>/mlflow.db`` with artefacts in ``<data_dir>/mlartifacts``;
``mlops.tracking_uri`` names a tracking server instead (then the server decides where artefacts
go). MLflow's usage telemetry is switched off before ``mlflow`` is first imported, because the
package may read those variables at import time. ``mlflow`` is imported lazily everywhere: it takes
seconds, and commands that do not track must not pay for it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError

if TYPE_CHECKING:
    import mlflow

#: Run tags every tracked run carries.
TAG_JOB = "job"
TAG_GIT_COMMIT = "git_commit"
TAG_VERSION = "package_version"

_REMOTE_SCHEMES = ("http://", "https://", "databricks")

#: The id of the tracked run open in this context. MLflow keeps its active run per thread, so a
#: job step run in a worker thread (``asyncio.to_thread`` copies the context) would otherwise open
#: a top-level run instead of a child of the job's run.
_OPEN_RUN: ContextVar[str | None] = ContextVar("genai_open_run", default=None)


def _telemetry_off() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"


def import_mlflow() -> Any:
    """``mlflow`` with telemetry off (the variables are set before the first import)."""
    _telemetry_off()
    for noisy in ("mlflow", "alembic"):  # schema migrations and store notes are not user news
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ConfigurationError(f"MLflow is not installed: {exc}") from exc
    return mlflow


def is_embedded(settings: Settings) -> bool:
    """True when runs and artefacts live in the data directory (no tracking server)."""
    return not settings.mlflow_tracking_uri().startswith(_REMOTE_SCHEMES)


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id.

    Idempotent: the experiment is created once (with its artefacts under
    ``settings.mlflow_artifact_dir()`` when embedded) and found by name afterwards.
    """
    mlflow = import_mlflow()
    uri = settings.mlflow_tracking_uri()
    if is_embedded(settings):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = settings.mlops.experiment
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if is_embedded(settings):
                artifacts = settings.mlflow_artifact_dir()
                artifacts.mkdir(parents=True, exist_ok=True)
                location = artifacts.as_uri()
            experiment_id = str(mlflow.create_experiment(name, artifact_location=location))
        else:
            experiment_id = str(experiment.experiment_id)
    except mlflow.exceptions.MlflowException as exc:
        if "already exists" in str(exc):  # another process created it meanwhile
            return str(mlflow.get_experiment_by_name(name).experiment_id)
        raise ConfigurationError(f"MLflow tracking at {uri} failed: {exc.message}") from exc
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str | None:
    """The commit checked out in the working directory, if it is a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def run_tags(job: str, tags: dict[str, str] | None = None) -> dict[str, str]:
    """The tags of a run of ``job``: the job, the git commit, the package version, and ``tags``."""
    from genai_factory import __version__

    result = {TAG_JOB: job, TAG_VERSION: __version__}
    commit = git_commit()
    if commit:
        result[TAG_GIT_COMMIT] = commit
    result.update(tags or {})
    return result


@contextmanager
def tracked_run(
    settings: Settings, run_name: str, *, job: str, tags: dict[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run tagged with the job, git commit and package version.

    Opened inside another tracked run it becomes that run's child (``nested``), which is how a
    suite groups one run per candidate under its parent run, also from a worker thread started
    with ``asyncio.to_thread`` inside the parent's block. The run ends ``FAILED`` when the block
    raises.
    """
    mlflow = import_mlflow()
    experiment_id = configure(settings)
    nested = mlflow.active_run() is not None
    parent = None if nested else _OPEN_RUN.get()
    with mlflow.start_run(
        run_name=run_name,
        experiment_id=experiment_id,
        nested=nested,
        parent_run_id=parent,
        tags=run_tags(job, tags),
    ) as run:
        token = _OPEN_RUN.set(str(run.info.run_id))
        try:
            yield run
        finally:
            _OPEN_RUN.reset(token)
