"""Prometheus metrics: one registry per application, every family observable."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from genai_factory.messages import Usage
from genai_factory.observability.context import (
    RequestTelemetry,
    enter_telemetry,
    leave_telemetry,
    record_guard_block,
)
from genai_factory.observability.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_http("GET", "/healthz", 200, 0.01)
    assert value(first, "genai_http_requests_total", method="GET", route="/healthz", status="200")
    assert not value(
        second, "genai_http_requests_total", method="GET", route="/healthz", status="200"
    )


def test_pipeline_observations() -> None:
    metrics = Metrics()
    metrics.observe_pipeline("generate", "rag", "ok")
    metrics.observe_stages({"retrieval": 12.0, "llm": 800.0})
    metrics.observe_usage("m1", None, Usage(prompt_tokens=10, completion_tokens=4, cost_usd=0.5))
    metrics.observe_usage("m1", "key1", Usage(prompt_tokens=1, completion_tokens=2, cost_usd=0.25))
    assert value(
        metrics, "genai_pipeline_requests_total", endpoint="generate", route="rag", status="ok"
    )
    assert value(metrics, "genai_stage_duration_seconds_count", stage="llm") == 1
    assert value(metrics, "genai_stage_duration_seconds_sum", stage="llm") == 0.8
    assert (
        value(metrics, "genai_llm_tokens_total", model="m1", key_id="anonymous", kind="prompt")
        == 10
    )
    assert value(metrics, "genai_llm_cost_usd_total", model="m1", key_id="key1") == 0.25


def test_operations_observations() -> None:
    metrics = Metrics()
    metrics.breaker_changed("m1", "open")
    assert value(metrics, "genai_circuit_breaker_state", model="m1") == 2
    metrics.breaker_changed("m1", "half_open")
    metrics.breaker_changed("m1", "closed")
    assert value(metrics, "genai_circuit_breaker_state", model="m1") == 0
    assert value(metrics, "genai_circuit_breaker_transitions_total", model="m1", state="open")
    metrics.refused("budget")
    metrics.refused("rpm")
    metrics.refused("rpm")
    assert value(metrics, "genai_gateway_rejections_total", reason="rpm") == 2
    metrics.interactions("written", 3)
    assert value(metrics, "genai_interaction_log_records_total", outcome="written") == 3
    metrics.budget_alerted("key1")
    assert value(metrics, "genai_budget_alerts_total", key_id="key1") == 1


def test_guard_blocks_count_in_the_current_request_only() -> None:
    metrics = Metrics()
    record_guard_block("injection")  # outside a request: nothing to count into, no error
    token = enter_telemetry(RequestTelemetry(metrics=metrics))
    try:
        record_guard_block("injection", "input")
        record_guard_block("pii", "output")
    finally:
        leave_telemetry(token)
    assert value(metrics, "genai_guard_blocks_total", guard="injection", stage="input") == 1
    assert value(metrics, "genai_guard_blocks_total", guard="pii", stage="output") == 1
