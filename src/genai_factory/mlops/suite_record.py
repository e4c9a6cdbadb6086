"""Recording a suite in MLflow: one parent run with the verdict, one child run per candidate.

The parent run carries the challenger's metrics, the tag ``gates`` (``passed`` / ``failed``), one
tag ``gate.<n>`` per condition with its result line, and ``gates.json`` with every verdict. Each
child run (tag ``role``: ``challenger`` or ``champion``) carries that candidate's metrics and the
answers it gave, so a failed gate can be traced to the questions behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from genai_factory.config import Settings
from genai_factory.mlops.tracking import tracked_run

if TYPE_CHECKING:
    from genai_factory.mlops.qa_eval import QAReport
    from genai_factory.mlops.suite import SuiteResult

#: MLflow limits a tag value's length; gate lines are cut to fit.
_TAG_LIMIT = 5000


def _child(
    settings: Settings,
    role: str,
    ref: str,
    metrics: dict[str, float],
    reports: Sequence[QAReport],
) -> None:
    import mlflow

    with tracked_run(settings, role, job="eval_candidate", tags={"role": role, "model_ref": ref}):
        mlflow.log_metrics(metrics)
        for number, report in enumerate(reports):
            mlflow.log_dict(
                {"dataset": report.dataset, "answers": report.answers},
                f"qa_answers_{number}.json",
            )


def record_suite(
    settings: Settings,
    result: SuiteResult,
    reports: Sequence[QAReport],
    champion_reports: Sequence[QAReport],
) -> str:
    """Log ``result`` as a parent run with a child per candidate; return the parent's run id."""
    import mlflow

    tags = {
        "suite": result.name,
        "gates": "passed" if result.passed else "failed",
        "challenger_ref": result.candidates["challenger"],
        "champion_ref": result.candidates["champion"] or "-",
    }
    with tracked_run(settings, f"suite-{result.name}", job="eval_suite", tags=tags) as parent:
        mlflow.set_tags(
            {f"gate.{n}": gate.line()[:_TAG_LIMIT] for n, gate in enumerate(result.gates)}
        )
        mlflow.log_metrics(result.metrics)
        mlflow.log_dict(result.as_dict(), "gates.json")
        _child(settings, "challenger", result.candidates["challenger"], result.metrics, reports)
        if result.champion_metrics is not None:
            _child(
                settings,
                "champion",
                result.candidates["champion"],
                result.champion_metrics,
                champion_reports,
            )
        return str(parent.info.run_id)
