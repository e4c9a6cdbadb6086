from __future__ import annotations

import pytest
from pydantic import ValidationError

from genai_factory.mlops.gates import Gate, check_gates


def test_absolute_gates_pass_and_fail() -> None:
    gates = [Gate(metric="qa.f1", min=0.3), Gate(metric="latency.p95_ms", max=100)]
    results = check_gates(gates, {"qa.f1": 0.5, "latency.p95_ms": 150.0})
    assert [r.status for r in results] == ["passed", "failed"]
    assert "latency.p95_ms" in results[1].line()


def test_regression_margin_higher_is_better() -> None:
    gate = Gate(metric="qa.f1", max_regression=0.01)
    ok = check_gates([gate], {"qa.f1": 0.495}, {"qa.f1": 0.5})
    bad = check_gates([gate], {"qa.f1": 0.48}, {"qa.f1": 0.5})
    assert ok[0].status == "passed"
    assert bad[0].status == "failed"
    assert "regression +0.0200" in bad[0].detail


def test_regression_direction_inferred_for_latency_and_overridable() -> None:
    gate = Gate(metric="latency.p95_ms", max_regression=10)
    assert gate.better() == "lower"
    assert check_gates([gate], {"latency.p95_ms": 120.0}, {"latency.p95_ms": 100.0})[0].failed
    assert not check_gates([gate], {"latency.p95_ms": 90.0}, {"latency.p95_ms": 100.0})[0].failed
    custom = Gate(metric="my.score", max_regression=0, direction="lower")
    assert custom.better() == "lower"


def test_without_champion_regression_gates_are_skipped() -> None:
    results = check_gates([Gate(metric="qa.f1", min=0.1, max_regression=0.0)], {"qa.f1": 0.2}, None)
    assert [r.status for r in results] == ["passed", "skipped"]


def test_improvement_margin_must_be_reached_in_the_better_direction() -> None:
    gate = Gate(metric="qa.f1", min_improvement=0.05)
    ok = check_gates([gate], {"qa.f1": 0.56}, {"qa.f1": 0.5})
    equal = check_gates([gate], {"qa.f1": 0.5}, {"qa.f1": 0.5})
    assert ok[0].status == "passed" and "improvement +0.0600" in ok[0].detail
    assert equal[0].failed and "improvement >= 0.05" in equal[0].line()
    faster = Gate(metric="latency.p95_ms", min_improvement=10)
    assert not check_gates([faster], {"latency.p95_ms": 80.0}, {"latency.p95_ms": 100.0})[0].failed
    assert check_gates([faster], {"latency.p95_ms": 95.0}, {"latency.p95_ms": 100.0})[0].failed
    assert check_gates([gate], {"qa.f1": 0.9}, None)[0].status == "skipped"


def test_unmeasured_metric_fails() -> None:
    results = check_gates([Gate(metric="qa.bleu", min=1)], {"qa.f1": 1.0})
    assert results[0].failed and "not measured" in results[0].detail


def test_gate_needs_a_condition() -> None:
    with pytest.raises(ValidationError, match="needs min, max, max_regression or min_improvement"):
        Gate(metric="qa.f1")
