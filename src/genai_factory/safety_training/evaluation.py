"""Measuring guards: binary detection metrics with latency, and token-level PII precision/recall.

Used by ``genai-factory eval guard`` / ``eval pii``, the training script and the benchmarks, so every
figure the project reports comes from the same code. Pure functions apart from the clock.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Presidio-evaluator entity types → this project's PII kinds. Types not listed (ORGANIZATION,
#: DATE_TIME, TITLE, AGE, NRP, ZIP_CODE, DOMAIN_NAME, US_DRIVER_LICENSE) are out of scope: their
#: tokens count as "no entity", so predicting anything there is a false positive.
PRESIDIO_MAPPING: dict[str, str] = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOCATION": "LOCATION",
    "STREET_ADDRESS": "LOCATION",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
}
_TOKEN = re.compile(r"\w+(?:[.'@:/-]\w+)*")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class BinaryReport:
    """Detection quality of a guard on labelled texts, with per-text latency."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, truth: bool, predicted: bool, latency_ms: float) -> None:
        if truth and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1
        self.latencies_ms.append(latency_ms)

    def as_dict(self) -> dict[str, Any]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "n": self.tp + self.fp + self.fn + self.tn,
            "positives": self.tp + self.fn,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "false_positive_rate": round(self.fp / (self.fp + self.tn), 4)
            if self.fp + self.tn
            else 0.0,
            "latency_p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "latency_p95_ms": round(percentile(self.latencies_ms, 95), 3),
            "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
        }


def evaluate_binary(
    predict: Callable[[str], bool], rows: Iterable[tuple[str, bool]]
) -> BinaryReport:
    """Run ``predict`` on every text, timing each call."""
    report = BinaryReport()
    for text, truth in rows:
        started = time.perf_counter()
        predicted = predict(text)
        report.add(truth, predicted, (time.perf_counter() - started) * 1000)
    return report


Span = tuple[int, int, str]


def _token_labels(text: str, spans: Sequence[Span]) -> list[str]:
    labels = []
    for token in _TOKEN.finditer(text):
        label = "O"
        for start, end, kind in spans:
            if token.start() < end and token.end() > start:
                label = kind
                break
        labels.append(label)
    return labels


@dataclass
class TokenReport:
    """Token-level precision/recall/F1 per entity kind, the way presidio-evaluator scores."""

    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, text: str, gold: Sequence[Span], predicted: Sequence[Span]) -> None:
        for truth, guess in zip(
            _token_labels(text, gold), _token_labels(text, predicted), strict=True
        ):
            if truth == guess and truth != "O":
                self.tp[truth] += 1
                continue
            if guess != "O":
                self.fp[guess] += 1
            if truth != "O":
                self.fn[truth] += 1

    @staticmethod
    def _scores(tp: int, fp: int, fn: int) -> dict[str, Any]:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support_tokens": tp + fn,
        }

    def as_dict(self) -> dict[str, Any]:
        kinds = sorted(set(self.tp) | set(self.fp) | set(self.fn))
        per_kind = {k: self._scores(self.tp[k], self.fp[k], self.fn[k]) for k in kinds}
        overall = self._scores(sum(self.tp.values()), sum(self.fp.values()), sum(self.fn.values()))
        return {
            "per_entity": per_kind,
            "overall": overall,
            "latency_p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "latency_p95_ms": round(percentile(self.latencies_ms, 95), 3),
        }


def evaluate_pii(
    find: Callable[[str], Sequence[Span]],
    records: Iterable[Mapping[str, Any]],
    mapping: Mapping[str, str] = PRESIDIO_MAPPING,
) -> TokenReport:
    """Score ``find`` on presidio-evaluator records (``full_text`` and ``spans``)."""
    report = TokenReport()
    for record in records:
        text = str(record["full_text"])
        gold = [
            (int(s["start_position"]), int(s["end_position"]), mapping[s["entity_type"]])
            for s in record.get("spans", [])
            if s["entity_type"] in mapping
        ]
        started = time.perf_counter()
        predicted = find(text)
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        report.add(text, gold, predicted)
    return report
