"""The evaluation orchestrator: ``eval qa`` on one model, ``eval run`` on a suite with gates.

:func:`evaluate_qa` answers SQuAD-format questions with one model reference (``base``,
``champion``, ``challenger``, a version number or a GGUF path). :func:`run_suite` runs a suite's
evaluators on the challenger and the champion, checks the gates and records everything in MLflow:
one parent run for the suite (tags: the verdict and every gate's result) with one child run per
candidate holding its metrics and its answers. Both are synchronous (they run their own event loop,
in a worker thread when called from inside one), with ``a``-prefixed async twins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from genai_factory.config import Settings
from genai_factory.exceptions import NotFoundError
from genai_factory.llm.base import ChatModel
from genai_factory.mlops.gates import check_gates
from genai_factory.mlops.qa import qa_metrics, qa_prompt
from genai_factory.mlops.qa_eval import (
    QAReport,
    Tick,
    evaluate_with_model,
    load_model,
    load_questions,
)
from genai_factory.mlops.suite import (
    QAEvaluator,
    RetrievalEvaluator,
    SafetyEvaluator,
    SuiteResult,
    SuiteSpec,
    load_suite,
)

__all__ = [
    "QAReport",
    "SuiteResult",
    "aevaluate_qa",
    "arun_suite",
    "evaluate_qa",
    "log_qa_report",
    "qa_metrics",
    "qa_prompt",
    "run_suite",
]

T = TypeVar("T")
ModelFactory = Callable[[str], ChatModel]


def run_sync(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion, from sync code or (in a thread) from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()  # type: ignore[arg-type]


@contextmanager
def _progress(enabled: bool, label: str, total: int) -> Iterator[Tick | None]:
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from genai_factory.command_runner import err

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    with bars:
        task = bars.add_task(label, total=total)
        yield lambda: bars.update(task, advance=1)


async def aevaluate_qa(
    settings: Settings,
    dataset: Path,
    *,
    model_ref: str = "base",
    with_context: bool = True,
    limit: int | None = None,
    progress: bool = True,
    titles: tuple[str, ...] = (),
    seed: int = 0,
    model: ChatModel | None = None,
) -> QAReport:
    """Evaluate ``model_ref`` (or the given ``model``) on the questions of ``dataset``."""
    items = load_questions(dataset, limit=limit, titles=titles, seed=seed)
    chosen = model or load_model(settings, model_ref)
    try:
        with _progress(progress, f"qa {model_ref}", len(items)) as tick:
            return await evaluate_with_model(
                settings,
                chosen,
                items,
                model_ref=model_ref,
                dataset=str(dataset),
                with_context=with_context,
                tick=tick,
            )
    finally:
        if model is None:
            await chosen.aclose()


def evaluate_qa(
    settings: Settings,
    dataset: Path,
    *,
    model_ref: str = "base",
    with_context: bool = True,
    limit: int | None = None,
    progress: bool = True,
    titles: tuple[str, ...] = (),
    seed: int = 0,
    model: ChatModel | None = None,
) -> QAReport:
    """:func:`aevaluate_qa`, synchronously."""
    return run_sync(
        lambda: aevaluate_qa(
            settings,
            dataset,
            model_ref=model_ref,
            with_context=with_context,
            limit=limit,
            progress=progress,
            titles=titles,
            seed=seed,
            model=model,
        )
    )


# -- metric names ---------------------------------------------------------------------------
_KEY = re.compile(r"[^a-z0-9_.\-/ ]")


def metric_key(*parts: str) -> str:
    """An MLflow-safe metric name: ``nDCG@10`` becomes ``ndcg_at_10``."""
    joined = ".".join(parts).lower().replace("@", "_at_")
    return _KEY.sub("_", joined)


_QA_GROUPS = {
    "latency_p50_ms": "latency.p50_ms",
    "latency_p95_ms": "latency.p95_ms",
    "latency_mean_ms": "latency.mean_ms",
    "cost_usd": "cost.usd",
    "cost_usd_per_1k": "cost.usd_per_1k",
    "prompt_tokens": "cost.prompt_tokens",
    "completion_tokens": "cost.completion_tokens",
}


def suite_metrics(report: QAReport) -> dict[str, float]:
    """A QA report's metrics under their suite names (``qa.f1``, ``latency.p95_ms`` ...)."""
    return {_QA_GROUPS.get(k, f"qa.{k}"): float(v) for k, v in report.metrics.items()}


def log_qa_report(settings: Settings, report: QAReport, *, job: str = "eval_qa") -> str:
    """Record one QA evaluation as an MLflow run (metrics, parameters, answers); its run id."""
    from genai_factory.mlops.tracking import tracked_run

    tags = {"model_ref": report.model_ref, "model": report.model}
    with tracked_run(settings, f"qa-{report.model_ref}", job=job, tags=tags) as run:
        _log_qa(report)
        return str(run.info.run_id)


def _log_qa(report: QAReport) -> None:
    import mlflow

    mlflow.log_params(
        {
            "dataset": report.dataset,
            "with_context": report.with_context,
            "questions": int(report.metrics.get("n", 0)),
            "model_ref": report.model_ref,
        }
    )
    mlflow.log_metrics(suite_metrics(report))
    mlflow.log_dict({"answers": report.answers}, "qa_answers.json")


# -- suites ---------------------------------------------------------------------------------
async def _retrieval(settings: Settings, evaluator: RetrievalEvaluator) -> dict[str, float]:
    from genai_factory.rag.beir import run_retrieval_eval

    result = await run_retrieval_eval(
        settings, evaluator.corpus, evaluator.queries, evaluator.qrels
    )
    return {metric_key("retrieval", k): float(v) for k, v in result.metrics.items()}


def _guard_dirs(settings: Settings, guard: str, ref: str) -> tuple[list[Path], str]:
    """Where a candidate's guard artefacts are: its registered version, else the configured."""
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.safety.registry import artefact_dirs

    if ref not in ("base", "default") and not ref.endswith(".gguf"):
        registry = ModelRegistry(settings)
        name = f"{settings.mlops.guard_prefix}{guard}"
        try:
            found = registry.get(name, int(ref)) if ref.isdigit() else registry.by_alias(name, ref)
        except NotFoundError:
            found = None
        if found is not None:
            return [registry.download(name, found.version)], f"{name} v{found.version}"
    return artefact_dirs(settings), "configured"


def _flagger(checker: Any, context: Any) -> Callable[[str], bool]:
    return lambda text: bool(checker.check(text, context).flagged)


def _safety(settings: Settings, evaluator: SafetyEvaluator, ref: str) -> dict[str, float]:
    from genai_factory.safety.artefacts import load_resources
    from genai_factory.safety.guard import GuardContext
    from genai_factory.safety.injection import InjectionGuard
    from genai_factory.safety.toxicity import ToxicityGuard
    from genai_factory.safety_training.evaluation import evaluate_binary
    from genai_factory.safety_training.training import read_labelled_csv

    metrics: dict[str, float] = {}
    context = GuardContext(surface="input")
    for spec in evaluator.guards:
        if not spec.dataset.is_file():
            raise NotFoundError(f"no such guard dataset: {spec.dataset}")
        rows = read_labelled_csv(spec.dataset, spec.text_col, spec.label_col, spec.positive)
        directories, _ = _guard_dirs(settings, spec.guard, ref)
        resources = load_resources(directories, names=False)
        checker = (
            InjectionGuard(resources.injection)
            if spec.guard == "injection"
            else ToxicityGuard(resources.toxicity)
        )
        report = evaluate_binary(_flagger(checker, context), rows)
        for key, value in report.as_dict().items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[metric_key("safety", spec.guard, key)] = float(value)
    return metrics


async def _candidate(
    settings: Settings,
    spec: SuiteSpec,
    ref: str,
    factory: ModelFactory,
    shared: dict[str, float],
    progress: bool,
) -> tuple[dict[str, float], list[QAReport]]:
    metrics = dict(shared)
    reports = []
    for evaluator in spec.evaluators:
        if isinstance(evaluator, QAEvaluator):
            model = factory(ref)
            try:
                report = await aevaluate_qa(
                    settings,
                    evaluator.dataset,
                    model_ref=ref,
                    with_context=evaluator.with_context,
                    limit=evaluator.limit,
                    titles=tuple(evaluator.titles),
                    seed=evaluator.seed,
                    progress=progress,
                    model=model,
                )
            finally:
                await model.aclose()
            reports.append(report)
            metrics.update(suite_metrics(report))
        elif isinstance(evaluator, SafetyEvaluator):
            metrics.update(_safety(settings, evaluator, ref))
    return metrics, reports


def _champion_exists(settings: Settings, ref: str, factory: ModelFactory | None) -> bool:
    """Whether the champion reference names something (a missing alias is not an error)."""
    if factory is not None or ref in ("base", "default") or ref.endswith(".gguf"):
        return True
    from genai_factory.mlops.registry import ModelRegistry

    registry = ModelRegistry(settings)
    name = settings.mlops.llm_name
    if ref.isdigit():
        try:
            registry.get(name, int(ref))
        except NotFoundError:
            return False
        return True
    return registry.by_alias(name, ref) is not None


async def arun_suite(
    settings: Settings,
    suite_path: Path,
    *,
    model_factory: ModelFactory | None = None,
    track: bool = True,
    progress: bool = False,
    challenger: str | None = None,
) -> SuiteResult:
    """Run the suite at ``suite_path``: evaluate, compare, gate, record (see module doc).

    ``model_factory`` builds the chat model of a reference (default: :func:`load_model`); it
    raises :class:`NotFoundError` when the reference names nothing, which for the champion means
    "no champion yet" and for the challenger is an error. ``challenger`` replaces the suite's
    challenger reference (the loop evaluates the very version it trained).
    """
    from genai_factory.mlops.suite_record import record_suite

    spec = load_suite(suite_path)
    if challenger is not None:
        spec.candidates.challenger = challenger
    factory = model_factory or (lambda ref: load_model(settings, ref))
    shared: dict[str, float] = {}
    for evaluator in spec.evaluators:
        if isinstance(evaluator, RetrievalEvaluator):
            shared.update(await _retrieval(settings, evaluator))
    metrics, reports = await _candidate(
        settings, spec, spec.candidates.challenger, factory, shared, progress
    )
    champion: dict[str, float] | None = None
    champion_reports: list[QAReport] = []
    notes: list[str] = []
    ref = spec.candidates.champion
    if ref == "champion" and not _champion_exists(settings, ref, model_factory):
        # Nothing promoted yet: the service serves the model as shipped, so guard against that.
        ref = "default"
        notes.append("no champion registered: compared with the model as shipped (default)")
    if ref is not None and _champion_exists(settings, ref, model_factory):
        try:
            champion, champion_reports = await _candidate(
                settings, spec, ref, factory, shared, progress
            )
        except NotFoundError as exc:
            notes.append(f"no champion ({exc.message}): only absolute gates apply")
    else:
        notes.append("no champion: only absolute gates apply")
    gates = check_gates(spec.gates, metrics, champion)
    result = SuiteResult(
        name=spec.name,
        passed=not any(g.failed for g in gates),
        failures=[g.line() for g in gates if g.failed],
        metrics=metrics,
        champion_metrics=champion,
        gates=gates,
        candidates={"challenger": spec.candidates.challenger, "champion": ref or ""},
        notes=notes,
    )
    if track:
        result.run_id = record_suite(settings, result, reports, champion_reports)
    return result


def run_suite(
    settings: Settings,
    suite_path: Path,
    *,
    model_factory: ModelFactory | None = None,
    track: bool = True,
    progress: bool = False,
    challenger: str | None = None,
) -> SuiteResult:
    """:func:`arun_suite`, synchronously."""
    return run_sync(
        lambda: arun_suite(
            settings,
            suite_path,
            model_factory=model_factory,
            track=track,
            progress=progress,
            challenger=challenger,
        )
    )
