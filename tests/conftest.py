"""Shared fixtures: settings that point at a temporary data directory and the bundled docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.config import Settings, bundled_docs_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Import the name gazetteers' ``faker`` provider modules once, here, in the main thread.

    ``faker`` ships a pytest plugin, so pytest rewrites every ``faker`` module it imports, with
    ``ast.parse``. The services load the gazetteers in a worker thread; hundreds of parses there,
    while another thread parses too (numpy reading an index header, traceback formatting), trip a
    CPython 3.11 race (seen on 3.11.7): the AST builder's recursion counter is shared between
    threads and a parse fails with ``SystemError: AST constructor recursion depth mismatch``. The gazetteers
    are cached, so after this no test imports ``faker`` off the main thread.
    """
    from genai_factory.safety.pii_names import load_gazetteers

    load_gazetteers()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GENAI_* variable or .env file of the developer's leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("GENAI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """Settings with the fake model and embedder, and an empty data directory."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat"},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [bundled_docs_dir()], "min_score": 0.2},
    )
