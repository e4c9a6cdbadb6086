"""The MLOps state at a glance: what the operations page and ``/v1/admin/mlops`` show.

Read from the MLflow registry and tracking store, never written: the ``champion`` and
``challenger`` version of every registered model (with its former champions), the last drift
verdict with the location of its HTML report, and the newest job runs with the result of each
(an evaluation suite's gates line by line, a drift run's verdict, a re-index decision, a loop
pass's promotions).

When nothing was ever registered or tracked (an embedded data directory without ``mlflow.db``)
the state is empty and MLflow is not imported at all. A store that fails to answer gives the same
empty state with the error in ``error``: a status page must not fail because a job store is down.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from genai_factory.config import Settings
from genai_factory.messages import UtcDatetime
from genai_factory.mlops.guard_champions import registry_exists
from genai_factory.mlops.registry import CHALLENGER, CHAMPION, PREVIOUS_TAG
from genai_factory.mlops.tracking import TAG_JOB, import_mlflow, is_embedded
from genai_factory.observability.interactions import utc_now

#: Job runs listed at most (newest first).
DEFAULT_RUN_LIMIT = 10
#: Child runs of a suite (one per candidate): their parent run carries the verdict.
HIDDEN_JOBS = ("eval_candidate",)
#: Where ``track_drift`` logs the verdict and the report inside a drift run's artefacts.
DRIFT_ARTEFACTS = "drift"
_P_ADJUSTED = "_p_adjusted"


class ModelState(BaseModel):
    """One registered model: the versions its aliases point at."""

    name: str
    champion: int | None = Field(description="The version served (``None``: as shipped).")
    challenger: int | None = Field(description="The version waiting for its evaluation.")
    latest_version: int | None
    previous_champions: list[int] = Field(description="Former champions, oldest first.")


class GateLine(BaseModel):
    """One condition of a promotion gate: ``passed``, ``failed`` or ``skipped``, and its line."""

    status: str
    text: str


class JobRun(BaseModel):
    """One tracked job run (drift, re-index, training, evaluation suite, loop pass ...)."""

    run_id: str
    job: str
    name: str
    status: str = Field(description="MLflow's run status: FINISHED, FAILED, RUNNING ...")
    started_at: UtcDatetime | None
    ended_at: UtcDatetime | None
    outcome: str | None = Field(description="What the run decided, when it records that.")
    gates: str | None = Field(description="An evaluation suite's verdict: passed or failed.")
    gate_results: list[GateLine]


class DriftState(BaseModel):
    """The last drift verdict."""

    run_id: str
    at: UtcDatetime | None
    drift: bool | None
    drifted_tests: list[str]
    report: str | None = Field(description="Artefact URI of the HTML report, when one was logged.")
    run_url: str | None = Field(description="The run in the MLflow UI (tracking server only).")


class MlopsState(BaseModel):
    """The registry's models, the last drift verdict and the newest job runs."""

    generated_at: UtcDatetime
    registry: bool = Field(description="A registry or tracking store is configured or exists.")
    models: list[ModelState]
    drift: DriftState | None
    runs: list[JobRun]
    error: str | None = Field(default=None, description="Why the store could not be read.")


def empty_state(settings: Settings, error: str | None = None) -> MlopsState:
    """The state with nothing in it (no registry, or a store that failed with ``error``)."""
    return MlopsState(
        generated_at=utc_now(),
        registry=registry_exists(settings),
        models=[],
        drift=None,
        runs=[],
        error=error,
    )


def _time(millis: Any) -> datetime | None:
    if not millis:
        return None
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC).replace(tzinfo=None)


def _int_or_none(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() else None


def previous_of(tags: dict[str, str]) -> list[int]:
    """The former champions in a registered model's ``previous_champion`` tag (JSON list)."""
    try:
        stack = json.loads(tags.get(PREVIOUS_TAG, "[]"))
    except ValueError:
        return []
    if not isinstance(stack, list):
        return []
    return [v for v in (_int_or_none(item) for item in stack) if v is not None]


def model_state(raw: Any) -> ModelState:
    """One MLflow ``RegisteredModel`` as :class:`ModelState`."""
    aliases = dict(getattr(raw, "aliases", None) or {})
    versions = [_int_or_none(v.version) for v in getattr(raw, "latest_versions", None) or ()]
    known = [v for v in versions if v is not None]
    return ModelState(
        name=str(raw.name),
        champion=_int_or_none(aliases.get(CHAMPION)),
        challenger=_int_or_none(aliases.get(CHALLENGER)),
        latest_version=max(known) if known else None,
        previous_champions=previous_of(dict(raw.tags or {})),
    )


def gate_lines(tags: dict[str, str]) -> list[GateLine]:
    """The ``gate.<n>`` tags of a suite run, in order, split into status and text."""
    numbered = []
    for key, line in tags.items():
        number = key.removeprefix("gate.")
        if key.startswith("gate.") and number.isdigit():
            numbered.append((int(number), line))
    lines = []
    for _, line in sorted(numbered):
        status, _, text = line.strip().partition(" ")
        lines.append(GateLine(status=status.lower(), text=text.strip()))
    return lines


def outcome_of(job: str, tags: dict[str, str]) -> str | None:
    """What a run of ``job`` decided, from the tags the job sets."""
    if job == "drift" and "drift" in tags:
        return "drift" if tags["drift"] == "true" else "no drift"
    if job == "eval_suite" and "gates" in tags:
        return f"gates {tags['gates']}"
    if job == "reindex" and "decision" in tags:
        return tags["decision"]
    if job == "loop" and "loop.promoted" in tags:
        return f"promoted: {tags['loop.promoted']}"
    return None


def job_run(raw: Any) -> JobRun:
    """One MLflow ``Run`` as :class:`JobRun`."""
    tags = dict(raw.data.tags or {})
    job = tags.get(TAG_JOB, "unknown")
    info = raw.info
    return JobRun(
        run_id=str(info.run_id),
        job=job,
        name=str(getattr(info, "run_name", None) or tags.get("mlflow.runName") or ""),
        status=str(info.status),
        started_at=_time(info.start_time),
        ended_at=_time(info.end_time),
        outcome=outcome_of(job, tags),
        gates=tags.get("gates"),
        gate_results=gate_lines(tags),
    )


def drifted_tests(metrics: dict[str, float], alpha: float | None) -> list[str]:
    """The tests whose Holm-adjusted p-value is below ``alpha`` (as ``track_drift`` logs them)."""
    if alpha is None:
        return []
    return sorted(
        name.removesuffix(_P_ADJUSTED)
        for name, value in metrics.items()
        if name.endswith(_P_ADJUSTED) and value < alpha
    )


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str | None:
    """The run's page in the MLflow UI of a tracking server (without any credentials)."""
    if is_embedded(settings):
        return None
    parts = urlsplit(settings.mlflow_tracking_uri())
    if parts.scheme not in ("http", "https"):
        return None
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _report_uri(client: Any, raw: Any) -> str | None:
    for artefact in client.list_artifacts(raw.info.run_id, DRIFT_ARTEFACTS) or ():
        if not artefact.is_dir and str(artefact.path).endswith(".html"):
            return f"{str(raw.info.artifact_uri).rstrip('/')}/{artefact.path}"
    return None


def drift_state(settings: Settings, client: Any, raw: Any) -> DriftState:
    """The verdict of one drift run, with its report's location."""
    tags = dict(raw.data.tags or {})
    params = dict(raw.data.params or {})
    try:
        alpha: float | None = float(params["alpha"])
    except (KeyError, ValueError):
        alpha = None
    return DriftState(
        run_id=str(raw.info.run_id),
        at=_time(raw.info.end_time or raw.info.start_time),
        drift={"true": True, "false": False}.get(tags.get("drift", "")),
        drifted_tests=drifted_tests(dict(raw.data.metrics or {}), alpha),
        report=_report_uri(client, raw),
        run_url=run_url(settings, str(raw.info.experiment_id), str(raw.info.run_id)),
    )


def read_state(settings: Settings, *, run_limit: int = DEFAULT_RUN_LIMIT) -> MlopsState:
    """The MLOps state (blocking: call it in a thread). Store errors propagate."""
    if not registry_exists(settings):
        return empty_state(settings)
    mlflow = import_mlflow()
    uri = settings.mlflow_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = [model_state(raw) for raw in client.search_registered_models(max_results=1000)]
    experiment = client.get_experiment_by_name(settings.mlops.experiment)
    runs: list[JobRun] = []
    drift = None
    if experiment is not None:
        ids = [str(experiment.experiment_id)]
        hidden = " AND ".join(f"tags.{TAG_JOB} != '{job}'" for job in HIDDEN_JOBS)
        order = ["attributes.start_time DESC"]
        found = client.search_runs(ids, hidden, max_results=run_limit, order_by=order)
        runs = [job_run(raw) for raw in found]
        last = client.search_runs(ids, f"tags.{TAG_JOB} = 'drift'", max_results=1, order_by=order)
        drift = drift_state(settings, client, last[0]) if last else None
    return MlopsState(
        generated_at=utc_now(),
        registry=True,
        models=sorted(models, key=lambda m: m.name),
        drift=drift,
        runs=runs,
    )


async def read_state_safely(settings: Settings, *, timeout_s: float = 10.0) -> MlopsState:
    """:func:`read_state` in a worker thread, never raising: a store that fails or does not answer
    within ``timeout_s`` gives the empty state with the reason in ``error``."""
    import asyncio

    import structlog

    try:
        return await asyncio.wait_for(asyncio.to_thread(read_state, settings), timeout_s)
    except TimeoutError:
        return empty_state(settings, f"the MLflow store did not answer within {timeout_s:g} s")
    except Exception as exc:  # a status read reports a broken store instead of failing with it
        structlog.get_logger(__name__).warning(
            "mlops_state_unreadable", error=f"{type(exc).__name__}: {exc}"
        )
        return empty_state(settings, f"the MLflow store could not be read: {type(exc).__name__}")
