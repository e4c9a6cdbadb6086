"""Prometheus metrics of one service instance, on its own ``CollectorRegistry``.

``create_app`` makes one :class:`Metrics` per application (no process-wide registry), so two apps
in one process (tests) never share counters. ``GET /metrics`` renders :meth:`Metrics.render`.

Families (all prefixed ``genai_``):

* ``http_requests_total{method,route,status}``, ``http_request_duration_seconds{method,route}``,
  ``http_requests_in_flight{method}``: every HTTP request, by route template (``/v1/...``).
* ``pipeline_requests_total{endpoint,route,status}``: answers by endpoint (``generate``,
  ``chat_completions`` ...), assistant route (``chat``, ``rag`` ...) and outcome.
* ``stage_duration_seconds{stage}``: time per pipeline stage (``retrieval``, ``llm``, guards ...).
* ``llm_tokens_total{model,key_id,kind}`` and ``llm_cost_usd_total{model,key_id}``.
* ``guard_blocks_total{guard,stage}``: requests or answers a guard blocked.
* ``feedback_total{rating}``: user ratings (``up``, ``down``) sent to ``POST /v1/feedback``.
* ``circuit_breaker_state{model}`` (0 closed, 1 half-open, 2 open) and
  ``circuit_breaker_transitions_total{model,state}``.
* ``gateway_rejections_total{reason}``: ``rpm``, ``tpm``, ``tpm_exceeds_limit``, ``budget``.
* ``interaction_log_records_total{outcome}`` (``written``, ``failed``, ``dropped``) and
  ``interaction_log_queue_depth``.
* ``budget_alerts_total{key_id}`` and ``budget_webhook_failures_total``.
* From the MLflow registry (:meth:`Metrics.observe_mlops`): ``model_version{model,alias}``,
  ``drift_detected{run_id}``, ``job_last_run_timestamp_seconds{job,status}`` and
  ``eval_gate_results{status}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from genai_factory.messages import Usage

if TYPE_CHECKING:
    from genai_factory.mlops.state import JobRun, MlopsState

NAMESPACE = "genai"
#: ``key_id`` label of calls made without an API key (auth off).
ANONYMOUS = "anonymous"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_LEVELS = {"closed": 0, "half_open": 1, "open": 2}
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric of one service instance (see the module docstring for the families)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._http_instruments()
        self._pipeline_instruments()
        self._operations_instruments()

    def _counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(
            name, doc, labels, namespace=NAMESPACE, registry=self.registry, buckets=buckets
        )

    def _http_instruments(self) -> None:
        self.http_requests = self._counter(
            "http_requests", "HTTP requests served.", ["method", "route", "status"]
        )
        self.http_latency = self._histogram(
            "http_request_duration_seconds",
            "HTTP request latency, to the end of the body (streams included).",
            ["method", "route"],
            HTTP_BUCKETS,
        )
        self.http_in_flight = self._gauge(
            "http_requests_in_flight", "HTTP requests being served.", ["method"]
        )

    def _pipeline_instruments(self) -> None:
        self.pipeline_requests = self._counter(
            "pipeline_requests",
            "Answers by endpoint, assistant route and outcome.",
            ["endpoint", "route", "status"],
        )
        self.stage_latency = self._histogram(
            "stage_duration_seconds", "Time spent per pipeline stage.", ["stage"], STAGE_BUCKETS
        )
        self.tokens = self._counter(
            "llm_tokens", "Model tokens by model and key.", ["model", "key_id", "kind"]
        )
        self.cost = self._counter(
            "llm_cost_usd", "Model cost in USD by model and key.", ["model", "key_id"]
        )
        self.guard_blocks = self._counter(
            "guard_blocks", "Inputs or answers blocked by a guard.", ["guard", "stage"]
        )
        self.feedback = self._counter(
            "feedback", "User ratings of answers (up or down).", ["rating"]
        )

    def _operations_instruments(self) -> None:
        self.breaker_state = self._gauge(
            "circuit_breaker_state", "0 closed, 1 half-open, 2 open.", ["model"]
        )
        self.breaker_transitions = self._counter(
            "circuit_breaker_transitions", "Breaker state changes.", ["model", "state"]
        )
        self.rejections = self._counter(
            "gateway_rejections", "Requests refused by a limit or budget.", ["reason"]
        )
        self.interaction_records = self._counter(
            "interaction_log_records", "Interaction records by outcome.", ["outcome"]
        )
        self.interaction_queue = self._gauge(
            "interaction_log_queue_depth", "Interaction records waiting to be written."
        )
        self.budget_alerts = self._counter(
            "budget_alerts", "Keys that passed the alert share of their budget.", ["key_id"]
        )
        self.webhook_failures = self._counter(
            "budget_webhook_failures", "Budget alert webhooks that failed."
        )
        self._mlops_instruments()

    def _mlops_instruments(self) -> None:
        # Read from the MLflow registry and tracking store (``mlops.state``) every
        # ``observability.mlops_refresh_s``; absent until a first read found something.
        self.model_version = self._gauge(
            "model_version", "Registered version an alias points at.", ["model", "alias"]
        )
        self.drift_detected = self._gauge(
            "drift_detected", "Verdict of the last drift run: 1 drift, 0 none.", ["run_id"]
        )
        self.job_last_run = self._gauge(
            "job_last_run_timestamp_seconds",
            "Start time of each job's newest tracked run, by its status.",
            ["job", "status"],
        )
        self.gate_results = self._gauge(
            "eval_gate_results",
            "Conditions of the newest evaluation suite's promotion gates, by status.",
            ["status"],
        )

    # -- observations -------------------------------------------------------------------------

    def observe_mlops(self, state: MlopsState) -> None:
        """Set the MLOps gauges from a state read (series that no longer hold are removed)."""
        for gauge in (
            self.model_version,
            self.drift_detected,
            self.job_last_run,
            self.gate_results,
        ):
            gauge.clear()
        for model in state.models:
            for alias, version in (("champion", model.champion), ("challenger", model.challenger)):
                if version is not None:
                    self.model_version.labels(model.name, alias).set(version)
        if state.drift is not None and state.drift.drift is not None:
            self.drift_detected.labels(state.drift.run_id).set(1 if state.drift.drift else 0)
        newest: dict[str, JobRun] = {}
        for run in state.runs:  # newest first
            newest.setdefault(run.job, run)
        for job, run in newest.items():
            if run.started_at is not None:
                self.job_last_run.labels(job, run.status).set(run.started_at.timestamp())
        suite = next((run for run in state.runs if run.gate_results), None)
        if suite is not None:
            for status in ("passed", "failed", "skipped"):
                count = sum(line.status == status for line in suite.gate_results)
                self.gate_results.labels(status).set(count)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def observe_pipeline(self, endpoint: str, route: str, status: str) -> None:
        self.pipeline_requests.labels(endpoint, route, status).inc()

    def observe_stages(self, stages_ms: Mapping[str, float]) -> None:
        for stage, ms in stages_ms.items():
            self.stage_latency.labels(stage).observe(max(0.0, ms) / 1000)

    def observe_usage(self, model: str, key_id: str | None, usage: Usage) -> None:
        key = key_id or ANONYMOUS
        self.tokens.labels(model, key, "prompt").inc(usage.prompt_tokens)
        self.tokens.labels(model, key, "completion").inc(usage.completion_tokens)
        self.cost.labels(model, key).inc(max(0.0, usage.cost_usd))

    def guard_blocked(self, guard: str, stage: str) -> None:
        self.guard_blocks.labels(guard, stage).inc()

    def breaker_changed(self, model: str, state: str) -> None:
        """The ``on_breaker_change`` hook of the model chain."""
        self.breaker_state.labels(model).set(BREAKER_LEVELS.get(str(state), 2))
        self.breaker_transitions.labels(model, str(state)).inc()

    def refused(self, reason: str) -> None:
        """The gateway refused a request: ``rpm``, ``tpm``, ``tpm_exceeds_limit`` or ``budget``."""
        self.rejections.labels(reason).inc()

    def interactions(self, outcome: str, count: int = 1) -> None:
        self.interaction_records.labels(outcome).inc(count)

    def budget_alerted(self, key_id: str) -> None:
        self.budget_alerts.labels(key_id).inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
