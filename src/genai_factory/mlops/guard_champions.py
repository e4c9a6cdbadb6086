"""Where the registry's guard champions are, for the guards that load them (no MLflow import
when nothing was ever registered).

Kept apart from :mod:`genai_factory.mlops.champion` (which swaps champions into a running
service and so needs the safety service) because the safety registry reads these directories.
"""

from __future__ import annotations

from pathlib import Path

from genai_factory.config import Settings


def registry_exists(settings: Settings) -> bool:
    """True when a registry may hold versions: a tracking URI is configured or the file exists."""
    return settings.mlops.tracking_uri is not None or (settings.data_dir / "mlflow.db").exists()


#: The guard classifiers ``train guard`` registers (``<guard_prefix><guard>``).
TRAINABLE_GUARDS = ("injection", "toxicity", "names")


def guard_champions(settings: Settings) -> dict[str, tuple[int, Path]]:
    """Each guard's champion version and local artefact directory (blocking)."""
    if not registry_exists(settings):
        return {}
    from genai_factory.mlops.registry import ModelRegistry

    registry = ModelRegistry(settings)
    found: dict[str, tuple[int, Path]] = {}
    for guard in TRAINABLE_GUARDS:
        name = f"{settings.mlops.guard_prefix}{guard}"
        version = registry.by_alias(name, "champion")
        if version is not None:
            found[guard] = (version.version, registry.download(name, version.version))
    return found
