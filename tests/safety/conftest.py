"""Fixtures of the safety tests: the packaged guard artefacts, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.safety.artefacts import GuardResources, load_resources, packaged_dir

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def resources() -> GuardResources:
    loaded = load_resources([packaged_dir()])
    assert loaded.injection is not None and loaded.toxicity is not None
    assert loaded.names is not None
    return loaded
