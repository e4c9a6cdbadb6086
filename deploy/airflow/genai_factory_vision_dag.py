"""The image model's loop as an Airflow DAG: drift check → retrain → gates → promotion.

The same ``genai-factory vision loop`` command as the Kubernetes CronJob
(``deploy/k8s/base/cronjob-vision-loop.yaml``). Copy this file into the DAG folder of an Airflow whose
workers have GenAI Factory installed and the data directory mounted; settings come from the file
named by ``GENAI_CONFIG``.

* ``check_drift``: ``vision loop`` without new data and without retraining data: it only checks
  drift (exit 0, and the verdict in JSON). The drift verdict is read from that JSON: drift makes
  the task succeed, no drift exits 99, which Airflow marks *skipped*, and the retraining with it.
* ``retrain``: ``vision loop --force`` with the base training set, the new labelled images and the
  fixed validation set: trains a challenger, gates it against the champion, promotes when it
  passes. Exit 4 (the gate refused it) fails the task without a retry: a verdict, not a crash.

``max_active_runs=1`` plays the part of the CronJob's ``concurrencyPolicy: Forbid``.
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
DATA = os.environ.get("GENAI_VISION_DATA", "/data/datasets/pneumoniamnist")
NEW = os.environ.get("GENAI_VISION_NEW_DATA", "/data/vision/new-labelled.npz")

#: The command of each task (checked against the CLI by the test suite).
COMMANDS = {
    "check_drift": "genai-factory vision loop --json",
    "retrain": (
        "genai-factory vision loop --force --json --train {data}/train.npz --val {data}/val.npz"
        " --new-data {new}"
    ),
}
#: Drift in the verdict → success (retrain runs); no drift → skipped (99); errors fail.
DRIFT_GATE = (
    "out=$({command}) || exit $?; echo \"$out\"; "
    "echo \"$out\" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"drift\"][\"drift\"] else 99)'"
)

DEFAULTS = {"owner": "mlops", "retries": 1, "retry_delay": timedelta(minutes=10)}
ENV = {"GENAI_CONFIG": CONFIG}


def _command(name: str) -> str:
    return COMMANDS[name].format(data=DATA, new=NEW)


with DAG(
    dag_id="genai_factory_vision_loop",
    description="Image model: drift of served inputs; on drift retrain, gate and promote.",
    schedule="30 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["genai-factory", "mlops", "vision"],
):
    check_drift = BashOperator(
        task_id="check_drift",
        bash_command=DRIFT_GATE.format(command=_command("check_drift")),
        env=ENV,
        append_env=True,
        retries=0,
    )
    retrain = BashOperator(
        task_id="retrain",
        bash_command=_command("retrain"),
        env=ENV,
        append_env=True,
        retries=0,
    )
    check_drift >> retrain
