"""Promotion gates: absolute thresholds on the challenger and no-regression margins against the
champion.

A gate names one metric (``qa.f1``, ``latency.p95_ms`` ...) and any of ``min``, ``max`` (absolute
bounds on the challenger), ``max_regression`` (how much worse than the champion the challenger
may be) and ``min_improvement`` (how much better than the champion it must be). Whether "worse"
means lower or higher comes from ``direction``, by default inferred from the name: latency, cost,
hallucination, false-positive and token metrics are better when lower. A metric that was not
measured fails its gate (a gate never passes by accident); a gate against the champion is skipped
when there is no champion, so a first model is judged by the absolute gates alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["higher", "lower"]
_LOWER_IS_BETTER = ("latency", "cost", "hallucination", "false_positive", "tokens", "seconds")


class Gate(BaseModel):
    """One condition the challenger must meet before it may be promoted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    metric: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    max_regression: float | None = Field(default=None, ge=0)
    min_improvement: float | None = Field(default=None, ge=0)
    direction: Direction | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> Gate:
        bounds = (self.min, self.max, self.max_regression, self.min_improvement)
        if all(bound is None for bound in bounds):
            raise ValueError(
                f"gate on {self.metric!r} needs min, max, max_regression or min_improvement"
            )
        return self

    def better(self) -> Direction:
        if self.direction is not None:
            return self.direction
        lower = any(word in self.metric for word in _LOWER_IS_BETTER)
        return "lower" if lower else "higher"


@dataclass(frozen=True)
class GateResult:
    """The verdict of one condition of a gate: ``passed``, ``failed`` or ``skipped``."""

    metric: str
    condition: str
    status: Literal["passed", "failed", "skipped"]
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def line(self) -> str:
        return f"{self.status.upper():7} {self.metric} {self.condition}: {self.detail}"


def _absolute(gate: Gate, value: float) -> list[GateResult]:
    results = []
    if gate.min is not None:
        ok = value >= gate.min
        results.append(
            GateResult(
                gate.metric,
                f">= {gate.min:g}",
                "passed" if ok else "failed",
                f"challenger {value:.4f}",
            )
        )
    if gate.max is not None:
        ok = value <= gate.max
        results.append(
            GateResult(
                gate.metric,
                f"<= {gate.max:g}",
                "passed" if ok else "failed",
                f"challenger {value:.4f}",
            )
        )
    return results


def _against_champion(
    gate: Gate, value: float, champion: Mapping[str, float] | None, improvement: bool
) -> GateResult:
    """``max_regression`` (``improvement=False``) or ``min_improvement`` against the champion."""
    if improvement:
        assert gate.min_improvement is not None
        condition = f"improvement >= {gate.min_improvement:g} ({gate.better()} is better)"
    else:
        assert gate.max_regression is not None
        condition = f"regression <= {gate.max_regression:g} ({gate.better()} is better)"
    if champion is None:
        return GateResult(gate.metric, condition, "skipped", "no champion to compare with")
    if gate.metric not in champion:
        return GateResult(gate.metric, condition, "failed", "not measured for the champion")
    base = champion[gate.metric]
    regression = base - value if gate.better() == "higher" else value - base
    if improvement:
        assert gate.min_improvement is not None
        ok = -regression >= gate.min_improvement - 1e-12
        change = f"improvement {-regression:+.4f}"
    else:
        assert gate.max_regression is not None
        ok = regression <= gate.max_regression + 1e-12
        change = f"regression {regression:+.4f}"
    return GateResult(
        gate.metric,
        condition,
        "passed" if ok else "failed",
        f"challenger {value:.4f} vs champion {base:.4f} ({change})",
    )


def check_gates(
    gates: Sequence[Gate],
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None = None,
) -> list[GateResult]:
    """Every condition of every gate, in order. ``champion=None``: there is no champion."""
    results: list[GateResult] = []
    for gate in gates:
        if gate.metric not in challenger:
            results.append(GateResult(gate.metric, "measured", "failed", "metric not measured"))
            continue
        value = challenger[gate.metric]
        results.extend(_absolute(gate, value))
        if gate.max_regression is not None:
            results.append(_against_champion(gate, value, champion, improvement=False))
        if gate.min_improvement is not None:
            results.append(_against_champion(gate, value, champion, improvement=True))
    return results
