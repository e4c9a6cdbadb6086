"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis), auth on.

The suite runs ``bench/fuzz_api.py`` (the service under uvicorn with the fake model, ``st run``
against its ``/openapi.json``) with a few examples per operation: no 5xx, no response that violates
the published schema, no stack trace in a body. ``bench/fuzz_api.py`` alone runs it longer.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

FUZZER = Path(__file__).resolve().parents[2] / "bench" / "fuzz_api.py"


def _fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_api", FUZZER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_every_operation_survives_generated_requests(tmp_path: Path) -> None:
    fuzz = _fuzzer()
    if not fuzz.ST.exists() and shutil.which("st") is None:
        pytest.fail("schemathesis is not installed (it is in the dev extra)")
    report = fuzz.run_fuzz(tmp_path, max_examples=8, phases="examples,coverage,fuzzing", seed=7)
    assert report.operations >= 15
    assert report.requests > 10 * report.operations
    assert report.server_errors == []
    assert report.traces == []
    assert report.schemathesis_exit == 0, report.schemathesis_summary
    # Both accepted and refused requests were generated for the routes.
    assert report.by_class.get("2xx", 0) > 50
    assert report.by_class.get("4xx", 0) > 50
