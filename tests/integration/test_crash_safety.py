"""``kill -9`` under load, then restart: every acknowledged request kept its records, no overspend.

Runs ``bench/crash_safety.py`` briefly (two kills of ``genai-factory serve`` under ten clients) on
SQLite and on PostgreSQL + Redis; ``bench/crash_safety.py`` alone runs it longer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

RUNNER = Path(__file__).resolve().parents[2] / "bench" / "crash_safety.py"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_safety", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_acknowledged_requests_survive_kill_9_and_budgets_hold(
    tmp_path: Path, backend: str
) -> None:
    report = _runner().run_crash(
        tmp_path, backend=backend, rounds=2, seconds=2.0, clients=8, budget_usd=1.0
    )
    assert report.acknowledged > 100, report
    assert report.missing_ledger == 0, report
    # The interaction record is queued before the response and written just after it, so a kill
    # can catch a few in the queue (none were lost in the measured runs; docs/reliability.md).
    assert report.missing_interactions <= 8 * 2, report
    assert report.ledger_spend_usd <= report.budget_usd, report
    assert report.refused_after_restart, report
    assert report.document_kept and report.index_version_kept, report
    assert all(result == "ok" for result in report.sqlite_integrity.values()), report
    # The kills happened under load: some clients saw the connection drop.
    assert report.statuses.get("transport_error", 0) > 0, report
