"""``kill -9`` under load, then restart: every acknowledged request kept its records, no overspend,
and the model registry kept every acknowledged version and a complete champion.

Runs ``bench/crash_safety.py`` briefly (two kills of ``genai-factory serve`` under ten clients, and
of a registrar process registering and promoting versions beside it) on SQLite and on PostgreSQL +
Redis; ``bench/crash_safety.py`` alone runs it longer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from genai_factory.config import Settings
from genai_factory.mlops.registry import ModelRegistry

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
    # Both the ledger row and the interaction record are committed before the response is sent.
    assert report.missing_ledger == 0, report
    assert report.missing_interactions == 0, report
    assert report.ledger_spend_usd <= report.budget_usd, report
    assert report.refused_after_restart, report
    assert report.document_kept and report.index_version_kept, report
    assert all(result == "ok" for result in report.sqlite_integrity.values()), report
    # The kills happened under load: some clients saw the connection drop.
    assert report.statuses.get("transport_error", 0) > 0, report
    # The registrar was killed in each round after an acknowledged registration; the registry
    # kept every acknowledged version and a complete champion, also as the service reports it.
    registry = report.registry
    assert registry is not None and len(registry.kills_during) == 2, report
    assert registry.acknowledged >= 2, registry
    assert registry.passed, registry


def _register(registry: ModelRegistry, model: str, payload: bytes, tmp_path: Path) -> list[dict]:
    """Register and promote ``payload``, returning the registrar's acknowledgements of it."""
    digest = hashlib.sha256(payload).hexdigest()
    artefact = tmp_path / digest[:12] / "adapter.gguf"
    artefact.parent.mkdir()
    artefact.write_bytes(payload)
    created = registry.register(model, artefact)
    registry.promote(model, created.version)
    return [
        {"op": "start", "sha256": digest},
        {"op": "registered", "version": created.version, "sha256": digest},
        {"op": "promoted", "version": created.version},
    ]


def test_the_registry_check_finds_a_changed_artefact_and_an_unacknowledged_champion(
    fake_settings: Settings, tmp_path: Path
) -> None:
    check = _runner().registry_check
    registry = ModelRegistry(fake_settings)
    acks = _register(registry, check.MODEL, b"one", tmp_path)
    acks += _register(registry, check.MODEL, b"two", tmp_path)
    intact = check.check_registry(fake_settings, acks, 2)
    assert intact.passed and (intact.acknowledged_found, intact.champion) == (2, 2), intact
    assert intact.rolled_back_to == 1, intact
    assert not check.check_registry(fake_settings, acks, None).passed  # the service disagrees

    registry.promote(check.MODEL, 2)
    registry.download(check.MODEL, 1).write_bytes(b"torn")
    changed = check.check_registry(fake_settings, acks, 2)
    assert changed.acknowledged_found == 1 and not changed.passed, changed

    registry.download(check.MODEL, 1).write_bytes(b"one")
    _register(registry, check.MODEL, b"three", tmp_path)  # registered, never acknowledged
    unacknowledged = check.check_registry(fake_settings, acks, 3)
    assert unacknowledged.champion == 3 and not unacknowledged.champion_complete, unacknowledged
    assert unacknowledged.unacknowledged == 1 and not unacknowledged.passed, unacknowledged
