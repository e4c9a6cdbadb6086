"""GenAI Factory's MLOps jobs as Airflow DAGs: the same ``genai-factory`` commands as the
Kubernetes CronJobs (``deploy/k8s/``) and ``genai-factory jobs scheduler``.

Copy this file into the DAG folder of an Airflow whose workers have GenAI Factory installed (the
``genai-factory`` script on ``PATH``) and the data directory mounted. Settings come from the file
named by the ``GENAI_CONFIG`` environment variable of the worker (default below).

* ``genai_factory_drift``: hourly drift check; when it finds drift (exit 3) the re-index runs right
  after it. No drift makes the check exit 99, which Airflow marks *skipped*, and the re-index is
  skipped with it; any other exit code fails the task.
* ``genai_factory_reindex``: nightly re-index (activates the new version only if it is not worse).
* ``genai_factory_train_guard``: weekly retraining of the prompt-injection guard (a challenger).

``max_active_runs=1`` plays the part of the CronJobs' ``concurrencyPolicy: Forbid``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

CONFIG = os.environ.get("GENAI_CONFIG", "/etc/genai-factory/config.yaml")
REPORTS = os.environ.get("GENAI_REPORTS", "/data/reports")

#: The command of each task (checked against the CLI by the test suite).
COMMANDS = {
    "drift": "genai-factory jobs drift --json --report {reports}/drift-{{{{ts_nodash}}}}.html",
    "reindex": "genai-factory jobs reindex --json",
    "train_guard": "genai-factory train guard --guard injection --datasets /data/datasets --json",
    "loop": "genai-factory jobs loop --once --json --report {reports}/loop-{{{{ts_nodash}}}}.html",
}
#: Drift found (3) → success, so the re-index downstream runs; no drift (0) → skipped (99).
DRIFT_GATE = (
    "{command}; code=$?; if [ $code -eq 3 ]; then exit 0; fi; "
    "if [ $code -eq 0 ]; then exit 99; fi; exit $code"
)

DEFAULTS = {
    "owner": "mlops",
    "retries": 1,
    "retry_delay": timedelta(minutes=10),
}
ENV = {"GENAI_CONFIG": CONFIG}


def _command(name: str) -> str:
    return COMMANDS[name].format(reports=REPORTS)


with DAG(
    dag_id="genai_factory_drift",
    description="Drift check of the interaction log; re-index when it drifted.",
    schedule="0 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["genai-factory", "mlops"],
):
    drift = BashOperator(
        task_id="drift",
        bash_command=DRIFT_GATE.format(command=_command("drift")),
        env=ENV,
        append_env=True,
        retries=0,
    )
    reindex_on_drift = BashOperator(
        task_id="reindex",
        bash_command=_command("reindex"),
        env=ENV,
        append_env=True,
    )
    drift >> reindex_on_drift

with DAG(
    dag_id="genai_factory_reindex",
    description="Nightly re-index; the new version serves only if it is not worse.",
    schedule="30 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["genai-factory", "mlops"],
):
    BashOperator(task_id="reindex", bash_command=_command("reindex"), env=ENV, append_env=True)

with DAG(
    dag_id="genai_factory_train_guard",
    description="Weekly retraining of the prompt-injection guard (registered as challenger).",
    schedule="0 4 * * 0",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["genai-factory", "mlops"],
):
    BashOperator(
        task_id="train_guard", bash_command=_command("train_guard"), env=ENV, append_env=True
    )

with DAG(
    dag_id="genai_factory_loop",
    description="The whole loop once a day: drift → re-index → gates → promotion.",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["genai-factory", "mlops"],
):
    BashOperator(task_id="loop", bash_command=_command("loop"), env=ENV, append_env=True)
