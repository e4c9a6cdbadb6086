"""``jobs drift``: has the traffic changed? A reference and a current window of the interaction log,
compared with two-sample tests (numpy/scipy only).

Tests (each skipped, and listed under ``insufficient``, when a window lacks the data):

* ``prompt_length`` — Kolmogorov–Smirnov on the request length in characters;
* ``query_embedding`` — MMD² (unbiased) between the query embeddings of the two windows with an RBF
  kernel whose bandwidth is the median pairwise distance of the pooled sample; the p-value comes
  from a seeded permutation test, vectorised as quadratic forms of one kernel matrix (at most
  :data:`MMD_MAX_SAMPLES` rows per window; never fewer permutations than the Holm correction needs
  for a p-value below ``alpha / tests`` to be possible at all);
* ``topic_mix`` — k-means on the pooled embeddings, chi-square on the windows' cluster counts;
* ``guard_block_rate``, ``refusal_rate``, ``error_rate``, ``positive_feedback_rate``,
  ``negative_feedback_rate`` — two-proportion z-tests (refusals and feedback among answered
  requests; a refusal is an answer saying it does not know);
* ``retrieval_score`` — KS on the best retrieval score per answered request, when the log holds one
  (``details.retrieval_scores`` or ``details.retrieval.top_score``).

p-values are Holm-corrected across the tests that ran (``p_adjusted``); a test drifted when its
adjusted p-value is below ``mlops.drift.alpha``; the verdict is drift when any test drifted. With
fewer than ``min_samples`` rows in either window no test runs and the verdict is no drift, with
every test listed as insufficient.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from scipy import stats
from sqlalchemy.engine import Engine

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.observability.interaction_store import (
    feedback_table,
    interactions_table,
    open_interaction_engine,
)
from genai_factory.observability.interactions import utc_now
from genai_factory.observability.stats import guard_events_of
from genai_factory.rag.embedding import Embedder

RATE_TESTS = (
    "guard_block_rate",
    "refusal_rate",
    "error_rate",
    "positive_feedback_rate",
    "negative_feedback_rate",
)
TESTS = ("prompt_length", "query_embedding", "topic_mix", *RATE_TESTS, "retrieval_score")
#: Answers that say the assistant does not know (the RAG prompt asks for exactly that).
REFUSAL = re.compile(
    r"\b(i\s+(do\s+not|don't|cannot|can't)\s+(know|answer|help)|not\s+in\s+the\s+(context|sources)"
    r"|no\s+information\s+(about|on))\b",
    re.IGNORECASE,
)
#: Permutations evaluated per matrix product (bounds memory at N × this many floats).
_PERMUTATION_BATCH = 64
#: Rows per window the MMD test uses at most (a seeded random subset of a larger window).
MMD_MAX_SAMPLES = 1000
#: Example queries kept per topic for the report.
_EXAMPLES = 3


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in naive UTC, the interaction log's convention."""

    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass
class WindowData:
    """The columns of one window the tests need (newest ``max_samples`` rows)."""

    texts: list[str] = field(default_factory=list)
    blocked: list[bool] = field(default_factory=list)
    errors: list[bool] = field(default_factory=list)
    answered: list[bool] = field(default_factory=list)
    refused: list[bool] = field(default_factory=list)
    positive: list[bool] = field(default_factory=list)
    negative: list[bool] = field(default_factory=list)
    top_scores: list[float] = field(default_factory=list)
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TestResult:
    """One test: its statistic, raw and Holm-adjusted p-values, and each window's summary."""

    statistic: float
    p_value: float
    reference: Any
    current: Any
    p_adjusted: float = 1.0
    drifted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "drifted": self.drifted,
            "reference": self.reference,
            "current": self.current,
        }


@dataclass
class DriftResult:
    """The verdict plus what the HTML report plots (kept out of the JSON)."""

    drift: bool
    tests: dict[str, TestResult]
    reference: Window
    current: Window
    samples: dict[str, int]
    insufficient: list[str]
    alpha: float
    plots: dict[str, Any] = field(default_factory=dict)
    truncated: dict[str, bool] = field(default_factory=dict)

    def verdict(self) -> dict[str, Any]:
        """The machine-readable verdict ``jobs drift --json`` prints."""
        return {
            "drift": self.drift,
            "drifted_tests": [name for name, test in self.tests.items() if test.drifted],
            "alpha": self.alpha,
            "tests": {name: test.as_dict() for name, test in self.tests.items()},
            "windows": {"reference": self.reference.as_dict(), "current": self.current.as_dict()},
            "samples": self.samples,
            "truncated": self.truncated,
            "insufficient": self.insufficient,
        }


# -- windows -----------------------------------------------------------------------------------
def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp as naive UTC (a timestamp without a zone is taken as UTC)."""
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(f"not an ISO 8601 timestamp: {text!r}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp


def resolve_windows(
    settings: Settings,
    *,
    now: datetime | None = None,
    reference_start: datetime | None = None,
    current_start: datetime | None = None,
    reference_hours: float | None = None,
    current_hours: float | None = None,
) -> tuple[Window, Window]:
    """The reference and current windows.

    Current: ``[current_start, current_start + current_hours)``, by default the last
    ``current_hours`` (``drift.window_hours``) before ``now``. Reference: from ``reference_start``
    for ``reference_hours``, by default the ``reference_hours`` right before the current window;
    with a start and no length it runs until the current window starts.
    """
    end = now or utc_now()
    hours = settings.mlops.drift.window_hours
    if current_start is None:
        current = Window(end - timedelta(hours=current_hours or hours), end)
    else:
        length = current_hours
        current = Window(current_start, current_start + timedelta(hours=length) if length else end)
    if reference_start is None:
        span = timedelta(hours=reference_hours or hours)
        reference = Window(current.start - span, current.start)
    else:
        length = reference_hours
        reference = Window(
            reference_start,
            reference_start + timedelta(hours=length) if length else current.start,
        )
    for name, window in (("reference", reference), ("current", current)):
        if window.end <= window.start:
            raise InvalidRequestError(f"the {name} window is empty ({window.as_dict()})")
    if reference.end > current.start:
        raise InvalidRequestError("the reference window must end before the current one starts")
    return reference, current


# -- reading the log ---------------------------------------------------------------------------
def _top_score(details: Any) -> float | None:
    if not isinstance(details, Mapping):
        return None
    scores = details.get("retrieval_scores")
    if isinstance(scores, list) and scores:
        numbers = [float(s) for s in scores if isinstance(s, int | float)]
        return max(numbers) if numbers else None
    retrieval = details.get("retrieval")
    if isinstance(retrieval, Mapping) and isinstance(retrieval.get("top_score"), int | float):
        return float(retrieval["top_score"])
    return None


def _is_blocked(status: str, safety: Any) -> bool:
    return status == "blocked" or any(action == "block" for _, action, _ in guard_events_of(safety))


def read_window(engine: Engine, window: Window, max_samples: int) -> WindowData:
    """The newest ``max_samples`` interactions of ``window`` and their feedback (blocking)."""
    table = interactions_table
    query = (
        sa.select(
            table.c.trace_id,
            table.c.status,
            table.c.request_text,
            table.c.response_text,
            table.c.safety,
            table.c.details,
        )
        .where(table.c.created_at >= window.start, table.c.created_at < window.end)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(max_samples + 1)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
        truncated = len(rows) > max_samples
        rows = rows[:max_samples]
        ratings: dict[str, set[int]] = {}
        traces = sorted({row.trace_id for row in rows})
        for start in range(0, len(traces), 500):
            chunk = traces[start : start + 500]
            found = conn.execute(
                sa.select(feedback_table.c.trace_id, feedback_table.c.rating).where(
                    feedback_table.c.trace_id.in_(chunk)
                )
            )
            for trace_id, rating in found:
                ratings.setdefault(trace_id, set()).add(int(rating))
    data = WindowData(truncated=truncated)
    for row in reversed(rows):  # oldest first
        answered = row.status == "ok"
        data.texts.append(row.request_text or "")
        data.blocked.append(_is_blocked(row.status, row.safety))
        data.errors.append(row.status == "error")
        data.answered.append(answered)
        data.refused.append(answered and bool(REFUSAL.search(row.response_text or "")))
        given = ratings.get(row.trace_id, set())
        data.positive.append(answered and any(r > 0 for r in given))
        data.negative.append(answered and any(r < 0 for r in given))
        score = _top_score(row.details) if answered else None
        if score is not None:
            data.top_scores.append(score)
    return data


# -- the tests ---------------------------------------------------------------------------------
def _summary(values: NDArray[np.float64]) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
    }


def ks_test(reference: Sequence[float], current: Sequence[float]) -> TestResult:
    """Two-sample Kolmogorov–Smirnov, with each window's mean, median and 95th percentile."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    result = stats.ks_2samp(ref, cur)
    return TestResult(float(result.statistic), float(result.pvalue), _summary(ref), _summary(cur))


def proportion_test(reference: Sequence[bool], current: Sequence[bool]) -> TestResult:
    """Two-proportion z-test (pooled variance); a rate that is 0 or 1 in both windows gives p=1."""
    n1, n2 = len(reference), len(current)
    k1, k2 = sum(reference), sum(current)
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return TestResult(0.0, 1.0, p1, p2)
    z = (p2 - p1) / math.sqrt(variance)
    return TestResult(z, float(2 * stats.norm.sf(abs(z))), p1, p2)


def _squared_distances(x: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.einsum("ij,ij->i", x, x)
    squared: NDArray[np.float64] = np.maximum(
        norms[:, None] + norms[None, :] - 2.0 * (x @ x.T), 0.0
    )
    return squared


def mmd_test(
    reference: NDArray[Any], current: NDArray[Any], *, permutations: int, seed: int
) -> tuple[TestResult, NDArray[np.float64]]:
    """Unbiased MMD² with an RBF kernel (median heuristic) and its permutation p-value.

    With ``K0`` the pooled kernel matrix with a zero diagonal and ``s`` the indicator of the first
    sample, ``Σ_xx = sᵀK0s``, ``Σ_xy = sᵀr − Σ_xx`` (``r`` the row sums) and
    ``Σ_yy = 1ᵀK0 1 − 2sᵀr + Σ_xx``, so a whole batch of permutations costs one matrix product.
    Returns the result and the null distribution (for the report).
    """
    x = np.vstack([reference, current]).astype(np.float64)
    n, m = len(reference), len(current)
    distances = _squared_distances(x)
    upper = distances[np.triu_indices(n + m, k=1)]
    bandwidth = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-distances / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    rows = kernel.sum(axis=1)
    total = float(rows.sum())

    def statistic(indicators: NDArray[np.float64]) -> NDArray[np.float64]:
        xx = np.einsum("ip,ip->p", indicators, kernel @ indicators)
        xr = indicators.T @ rows
        xy = xr - xx
        yy = total - 2 * xr + xx
        value: NDArray[np.float64] = xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)
        return value

    observed_indicator = np.zeros((n + m, 1))
    observed_indicator[:n] = 1.0
    observed = float(statistic(observed_indicator)[0])
    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    for start in range(0, permutations, _PERMUTATION_BATCH):
        size = min(_PERMUTATION_BATCH, permutations - start)
        indicators = np.zeros((n + m, size))
        for column in range(size):
            indicators[rng.permutation(n + m)[:n], column] = 1.0
        null[start : start + size] = statistic(indicators)
    p_value = (1 + int(np.sum(null >= observed))) / (1 + permutations)
    result = TestResult(
        observed,
        p_value,
        {"bandwidth": bandwidth, "n": n},
        {"n": m, "null_mean": float(null.mean())},
    )
    return result, null


def topic_test(
    reference: NDArray[Any],
    current: NDArray[Any],
    texts: Sequence[str],
    *,
    topics: int,
    seed: int,
) -> tuple[TestResult, list[dict[str, Any]]]:
    """k-means on the pooled embeddings, chi-square on the 2 × k count table.

    Returns the result and, per topic, each window's share and the queries nearest its centre.
    """
    from sklearn.cluster import KMeans

    pooled = np.vstack([reference, current]).astype(np.float64)
    k = max(2, min(topics, len(pooled) // 10))
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(pooled)
    labels = model.labels_
    n = len(reference)
    counts = np.array(
        [np.bincount(labels[:n], minlength=k), np.bincount(labels[n:], minlength=k)], dtype=float
    )
    used = counts.sum(axis=0) > 0
    table = counts[:, used]
    if table.shape[1] < 2:
        chi2, p_value = 0.0, 1.0
    else:
        outcome = stats.chi2_contingency(table)
        chi2, p_value = float(outcome.statistic), float(outcome.pvalue)
    shares = counts / counts.sum(axis=1, keepdims=True)
    described = []
    distances = model.transform(pooled)
    for topic in range(k):
        nearest = np.argsort(distances[:, topic])[: _EXAMPLES * 4]
        examples: list[str] = []
        for index in nearest:
            if labels[index] == topic and texts[index] not in examples:
                examples.append(texts[index])
            if len(examples) == _EXAMPLES:
                break
        described.append(
            {
                "topic": topic,
                "reference": float(shares[0, topic]),
                "current": float(shares[1, topic]),
                "examples": examples,
            }
        )
    result = TestResult(chi2, p_value, [float(s) for s in shares[0]], [float(s) for s in shares[1]])
    return result, described


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1)."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    adjusted: dict[str, float] = {}
    running = 0.0
    count = len(ordered)
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (count - rank) * p))
        adjusted[name] = running
    return adjusted


# -- the whole check ---------------------------------------------------------------------------
async def _embed(embedder: Embedder, texts: Sequence[str]) -> NDArray[Any]:
    vectors = await embedder.embed([t or " " for t in texts])
    return np.asarray(vectors, dtype=np.float64)


def permutations_needed(configured: int, alpha: float) -> int:
    """At least enough permutations for the smallest possible p-value, ``1/(P+1)``, to pass the
    first Holm step (``alpha / number of tests``) with room to spare; the configured count if more.
    """
    return max(configured, math.ceil(2 * len(TESTS) / alpha))


def _subsample(vectors: NDArray[Any], rng: np.random.Generator) -> NDArray[Any]:
    """At most :data:`MMD_MAX_SAMPLES` rows (the kernel matrix is quadratic in the rows)."""
    if len(vectors) <= MMD_MAX_SAMPLES:
        return vectors
    return vectors[np.sort(rng.choice(len(vectors), MMD_MAX_SAMPLES, replace=False))]


def _rate_inputs(data: WindowData) -> dict[str, list[bool]]:
    answered = [i for i, ok in enumerate(data.answered) if ok]
    return {
        "guard_block_rate": data.blocked,
        "refusal_rate": [data.refused[i] for i in answered],
        "error_rate": data.errors,
        "positive_feedback_rate": [data.positive[i] for i in answered],
        "negative_feedback_rate": [data.negative[i] for i in answered],
    }


async def compare(
    reference: WindowData,
    current: WindowData,
    *,
    embedder: Embedder,
    settings: Settings,
) -> tuple[dict[str, TestResult], list[str], dict[str, Any]]:
    """Run every test the data allows; returns the results, the skipped tests and plot data."""
    drift = settings.mlops.drift
    minimum = drift.min_samples
    results: dict[str, TestResult] = {}
    insufficient: list[str] = []
    plots: dict[str, Any] = {}
    if len(reference) < minimum or len(current) < minimum:
        return results, list(TESTS), plots

    ref_len = [float(len(t)) for t in reference.texts]
    cur_len = [float(len(t)) for t in current.texts]
    results["prompt_length"] = ks_test(ref_len, cur_len)
    plots["prompt_length"] = (ref_len, cur_len)

    ref_vectors = await _embed(embedder, reference.texts)
    cur_vectors = await _embed(embedder, current.texts)
    rng = np.random.default_rng(drift.seed)
    results["query_embedding"], plots["mmd_null"] = await asyncio.to_thread(
        mmd_test,
        _subsample(ref_vectors, rng),
        _subsample(cur_vectors, rng),
        permutations=permutations_needed(drift.permutations, drift.alpha),
        seed=drift.seed,
    )
    results["topic_mix"], plots["topics"] = await asyncio.to_thread(
        topic_test,
        ref_vectors,
        cur_vectors,
        [*reference.texts, *current.texts],
        topics=drift.topics,
        seed=drift.seed,
    )

    ref_rates, cur_rates = _rate_inputs(reference), _rate_inputs(current)
    for name in RATE_TESTS:
        if len(ref_rates[name]) < minimum or len(cur_rates[name]) < minimum:
            insufficient.append(name)
            continue
        results[name] = proportion_test(ref_rates[name], cur_rates[name])

    if len(reference.top_scores) < minimum or len(current.top_scores) < minimum:
        insufficient.append("retrieval_score")
    else:
        results["retrieval_score"] = ks_test(reference.top_scores, current.top_scores)
        plots["retrieval_score"] = (reference.top_scores, current.top_scores)
    return results, insufficient, plots


async def detect_drift(
    settings: Settings,
    reference: Window,
    current: Window,
    *,
    embedder: Embedder,
    engine: Engine | None = None,
) -> DriftResult:
    """Read both windows from the interaction log and compare them (see the module docstring)."""
    own = engine is None
    if engine is None:
        engine = await asyncio.to_thread(
            open_interaction_engine, settings.interaction_database_url()
        )
    try:
        limit = settings.mlops.drift.max_samples
        ref = await asyncio.to_thread(read_window, engine, reference, limit)
        cur = await asyncio.to_thread(read_window, engine, current, limit)
    finally:
        if own:
            await asyncio.to_thread(engine.dispose)
    tests, insufficient, plots = await compare(ref, cur, embedder=embedder, settings=settings)
    alpha = settings.mlops.drift.alpha
    adjusted = holm({name: test.p_value for name, test in tests.items()})
    for name, test in tests.items():
        test.p_adjusted = adjusted[name]
        test.drifted = adjusted[name] < alpha
    plots["rates"] = {
        name: (test.reference, test.current) for name, test in tests.items() if name in RATE_TESTS
    }
    return DriftResult(
        drift=any(test.drifted for test in tests.values()),
        tests=tests,
        reference=reference,
        current=current,
        samples={"reference": len(ref), "current": len(cur)},
        insufficient=insufficient,
        alpha=alpha,
        plots=plots,
        truncated={"reference": ref.truncated, "current": cur.truncated},
    )


def _metric_name(name: str) -> str:
    return name.replace("@", "_at_")


def track_drift(settings: Settings, result: DriftResult, report: Any = None) -> str:
    """Log the verdict to MLflow (job ``drift``): per-test statistics and p-values, the verdict as
    JSON and the HTML report when one was written. Returns the run id."""
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    mlflow = import_mlflow()
    tags = {"drift": str(result.drift).lower()}
    with tracked_run(settings, "drift", job="drift", tags=tags) as run:
        mlflow.log_params(
            {
                "reference_start": result.reference.start.isoformat(),
                "reference_end": result.reference.end.isoformat(),
                "current_start": result.current.start.isoformat(),
                "current_end": result.current.end.isoformat(),
                "alpha": result.alpha,
                "permutations": settings.mlops.drift.permutations,
            }
        )
        metrics: dict[str, float] = {
            "drift": float(result.drift),
            "reference_samples": float(result.samples["reference"]),
            "current_samples": float(result.samples["current"]),
        }
        for name, test in result.tests.items():
            metrics[f"{_metric_name(name)}_statistic"] = test.statistic
            metrics[f"{_metric_name(name)}_p_value"] = test.p_value
            metrics[f"{_metric_name(name)}_p_adjusted"] = test.p_adjusted
        mlflow.log_metrics(metrics)
        mlflow.log_dict(result.verdict(), "drift/verdict.json")
        if report is not None:
            mlflow.log_artifact(str(report), "drift")
        return str(run.info.run_id)
