"""Which model bundle a reference names, through the same registry and aliases as the LLM.

``ref``: ``bundled`` (the demonstration model in the package); a path to a bundle directory; an
alias of ``vision.model_name`` (``champion``, ``challenger``); or a version number. ``serving``
resolves what the service serves: the registry's champion when there is one, else
``vision.model_dir``, else the bundled model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genai_factory.config import Settings
from genai_factory.exceptions import NotFoundError
from genai_factory.mlops.guard_champions import registry_exists
from genai_factory.vision.bundle import MANIFEST, bundled_model_dir

BUNDLED = "bundled"


@dataclass(frozen=True)
class BundleRef:
    """A resolved bundle: its version label (``bundled``, ``local``, or the registry version)."""

    version: str
    path: Path


def _bundle_in(path: Path) -> Path:
    """The bundle directory at ``path`` or one level below it (a registered directory artefact)."""
    if (path / MANIFEST).is_file():
        return path
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if (child / MANIFEST).is_file():
                return child
    raise NotFoundError(f"no model bundle ({MANIFEST}) in {path}")


def resolve_bundle(settings: Settings, ref: str) -> BundleRef:
    """The bundle ``ref`` names (see the module docstring); :class:`NotFoundError` if none."""
    ref = ref.strip()
    if ref in ("", BUNDLED):
        return BundleRef(BUNDLED, _bundle_in(bundled_model_dir()))
    as_path = Path(ref).expanduser()
    if as_path.exists():
        return BundleRef("local", _bundle_in(as_path))
    from genai_factory.mlops.registry import ModelRegistry

    registry = ModelRegistry(settings)
    name = settings.vision.model_name
    found = registry.get(name, int(ref)) if ref.isdigit() else registry.by_alias(name, ref)
    if found is None:
        raise NotFoundError(f"{name!r} has no {ref!r} version yet")
    return BundleRef(str(found.version), _bundle_in(registry.download(name, found.version)))


def serving_bundle(settings: Settings) -> BundleRef:
    """What the service serves right now (blocking: call it in a thread)."""
    if settings.mlops.serve_champion and registry_exists(settings):
        from genai_factory.mlops.registry import ModelRegistry

        found = ModelRegistry(settings).by_alias(settings.vision.model_name, "champion")
        if found is not None:
            return resolve_bundle(settings, str(found.version))
    if settings.vision.model_dir is not None:
        return BundleRef("local", _bundle_in(settings.vision.model_dir))
    return resolve_bundle(settings, BUNDLED)
