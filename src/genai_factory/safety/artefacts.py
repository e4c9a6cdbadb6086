"""Where trained guard artefacts come from, and which names they have.

Each artefact is ``<name>.json`` (manifest: version, data hash, metrics, configuration) plus
``<name>.npz`` (weights). They are looked for in order: the configured artefact directory
(``<data_dir>/safety`` by default: what ``scripts/train_guards.py`` writes and what the MLOps job
promotes), then the artefacts shipped inside the package, which the same script produced from the
shared datasets. A missing artefact is not an error: the injection guard falls back to its rules,
the toxicity guard to allowing, the PII guard to its structured detectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from genai_factory.safety.pii_names import NameTagger, load_tagger
from genai_factory.safety.textclf import HashedLinearModel

log = structlog.get_logger(__name__)

INJECTION = "injection"
TOXICITY = "toxicity"
NAMES = "pii_names"


def packaged_dir() -> Path:
    """The artefacts shipped in the wheel."""
    return Path(__file__).resolve().parent / "artefacts"


def find_artefact(name: str, directories: Sequence[Path]) -> Path | None:
    """The manifest of the first ``name`` artefact found in ``directories``."""
    for directory in directories:
        manifest = directory / f"{name}.json"
        if manifest.is_file() and manifest.with_suffix(".npz").is_file():
            return manifest
    return None


@dataclass
class GuardResources:
    """The trained models the guards use; any may be ``None``."""

    injection: HashedLinearModel | None = None
    toxicity: HashedLinearModel | None = None
    names: NameTagger | None = None
    #: Words the knowledge base writes in lower case (:func:`~genai_factory.safety.pii.knowledge_terms`).
    terms: frozenset[str] = frozenset()

    def versions(self) -> dict[str, str | None]:
        return {
            INJECTION: self.injection.version if self.injection else None,
            TOXICITY: self.toxicity.version if self.toxicity else None,
            NAMES: str(self.names.manifest.get("version")) if self.names else None,
        }


def load_resources(directories: Sequence[Path], *, names: bool = True) -> GuardResources:
    """Load every artefact found (blocking: about a second, mostly the name gazetteers)."""
    resources = GuardResources()
    for name in (INJECTION, TOXICITY):
        path = find_artefact(name, directories)
        if path is None:
            log.warning("guard_artefact_missing", artefact=name)
            continue
        setattr(resources, name, HashedLinearModel.load(path))
    path = find_artefact(NAMES, directories) if names else None
    if path is not None:
        resources.names = load_tagger(path)
    log.info("guard_artefacts_loaded", **resources.versions())
    return resources
