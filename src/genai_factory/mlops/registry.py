"""The model registry: versions of the LLM, the guard classifiers and the index, with aliases.

Built on MLflow's registry with aliases (``champion`` serves, ``challenger`` waits for its
evaluation), never the deprecated stages. Registering logs the file or directory as an artefact of
a run and creates a model version whose source is that artefact. Promotion keeps a stack of former
champions in the registered model's tag ``previous_champion`` (a JSON list, newest last), so
``rollback`` works repeatedly and from any process.

What is registered under which name (see docs/mlops.md): the LLM under ``mlops.llm_name`` as one
GGUF file, either a merged model or a LoRA adapter (tag ``kind = lora_adapter``, its base named by
the tag ``base_ref``; :func:`resolve_llm_files` returns both files); guards under
``<mlops.guard_prefix><guard>`` as a directory of artefacts; index versions under
``mlops.index_name`` as a small JSON descriptor.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from genai_factory.config import Settings
from genai_factory.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
)
from genai_factory.mlops.tracking import configure, import_mlflow, tracked_run

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Registered-model tag holding the former champions (JSON list of versions, newest last).
PREVIOUS_TAG = "previous_champion"
#: Where a registered artefact goes inside its run's artefacts.
ARTEFACT_ROOT = "registry"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,99}$")


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered version as the package sees it (MLflow's ``ModelVersion``, simplified)."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    source: str
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "tags": self.tags,
            "description": self.description,
        }


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequestError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'"
        )
    return name


def _check_alias(alias: str) -> str:
    if not _ALIAS.match(alias) or alias.isdigit():
        raise InvalidRequestError(f"invalid alias {alias!r}: a word such as 'challenger'")
    return alias


def _version(raw: Any) -> RegisteredVersion:
    return RegisteredVersion(
        name=str(raw.name),
        version=int(raw.version),
        aliases=tuple(sorted(getattr(raw, "aliases", None) or ())),
        run_id=raw.run_id or None,
        source=str(raw.source or ""),
        created_at=datetime.fromtimestamp((raw.creation_timestamp or 0) / 1000, tz=UTC),
        tags=dict(raw.tags or {}),
        description=str(raw.description or ""),
    )


class ModelRegistry:
    """Register, find, promote and roll back model versions (MLflow registry with aliases)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mlflow = import_mlflow()
        configure(settings)
        uri = settings.mlflow_tracking_uri()
        self._client = self._mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    # -- errors ------------------------------------------------------------------------------
    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one client call, turning MLflow's exceptions into the package's."""
        exceptions = self._mlflow.exceptions
        try:
            return call(*args, **kwargs)
        except exceptions.MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"{what}: not found") from exc
            if code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"):
                raise InvalidRequestError(f"{what}: {exc.message}") from exc
            raise ConfigurationError(
                f"{what} failed in the MLflow registry: {exc.message}"
            ) from exc

    def _ensure_model(self, name: str) -> None:
        try:
            self._call(f"model {name!r}", self._client.get_registered_model, name)
        except NotFoundError:
            # another process may have created it meanwhile
            with contextlib.suppress(InvalidRequestError):
                self._call(f"model {name!r}", self._client.create_registered_model, name)

    # -- registering -------------------------------------------------------------------------
    def _log_artefact(self, run_id: str, name: str, artefact: Path) -> str:
        """Log ``artefact`` under ``registry/<name>/`` of the run; return its artefact URI."""
        subdir = f"{ARTEFACT_ROOT}/{name}"
        if artefact.is_dir():
            self._call(
                "logging the artefact",
                self._client.log_artifacts,
                run_id,
                str(artefact),
                f"{subdir}/{artefact.name}",
            )
        else:
            self._call(
                "logging the artefact", self._client.log_artifact, run_id, str(artefact), subdir
            )
        run = self._call(f"run {run_id}", self._client.get_run, run_id)
        return f"{run.info.artifact_uri.rstrip('/')}/{subdir}/{artefact.name}"

    def register(
        self,
        name: str,
        artefact: Path,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        alias: str | None = CHALLENGER,
        description: str = "",
    ) -> RegisteredVersion:
        """Log ``artefact`` (a file or a directory) and register it as a new version of ``name``.

        The artefact is logged to ``run_id``, or to a new run of job ``register`` when none is
        given. ``alias`` (by default ``challenger``) moves to the new version.
        """
        _check_name(name)
        if alias is not None:
            _check_alias(alias)
        artefact = Path(artefact)
        if not artefact.exists():
            raise NotFoundError(f"no such file or directory: {artefact}")
        if run_id is None:
            with tracked_run(self.settings, f"register-{name}", job="register") as run:
                source = self._log_artefact(run.info.run_id, name, artefact)
                run_id = str(run.info.run_id)
        else:
            source = self._log_artefact(run_id, name, artefact)
        self._ensure_model(name)
        created = self._call(
            f"registering {name!r}",
            self._client.create_model_version,
            name,
            source,
            run_id=run_id,
            tags=dict(tags or {}),
            description=description or None,
        )
        version = int(created.version)
        if alias is not None:
            self._set_alias(name, alias, version)
        return self.get(name, version)

    # -- reading -----------------------------------------------------------------------------
    def get(self, name: str, version: int) -> RegisteredVersion:
        """One version; :class:`NotFoundError` if the model or the version does not exist."""
        raw = self._call(
            f"model {name!r} version {version}", self._client.get_model_version, name, str(version)
        )
        return _version(raw)

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version ``alias`` points at, or ``None`` (no such model or alias)."""
        try:
            raw = self._call(
                f"alias {alias!r} of {name!r}",
                self._client.get_model_version_by_alias,
                name,
                alias,
            )
        except (NotFoundError, InvalidRequestError):
            return None
        return _version(raw)

    def list(self, name: str | None = None) -> list[RegisteredVersion]:
        """Every version (of ``name``, or of every model), by name then version."""
        query = f"name='{_check_name(name)}'" if name is not None else None
        found: list[RegisteredVersion] = []
        token: str | None = None
        while True:
            page = self._call(
                "listing models",
                self._client.search_model_versions,
                query,
                max_results=1000,
                page_token=token,
            )
            found.extend(_version(raw) for raw in page)
            token = getattr(page, "token", None)
            if not token:
                break
        # search results may omit aliases: take them from the registered models
        aliases = self._aliases({v.name for v in found})
        found = [
            RegisteredVersion(**{**v.__dict__, "aliases": aliases.get((v.name, v.version), ())})
            for v in found
        ]
        return sorted(found, key=lambda v: (v.name, v.version))

    def _aliases(self, names: set[str]) -> dict[tuple[str, int], tuple[str, ...]]:
        result: dict[tuple[str, int], list[str]] = {}
        for name in names:
            model = self._call(f"model {name!r}", self._client.get_registered_model, name)
            for alias, version in (model.aliases or {}).items():
                result.setdefault((name, int(version)), []).append(alias)
        return {key: tuple(sorted(value)) for key, value in result.items()}

    def previous_champions(self, name: str) -> builtins.list[int]:
        """Former champions of ``name``, oldest first (what ``rollback`` pops from)."""
        model = self._call(f"model {name!r}", self._client.get_registered_model, name)
        raw = (model.tags or {}).get(PREVIOUS_TAG, "[]")
        try:
            stack = json.loads(raw)
        except ValueError:
            return []
        return [int(v) for v in stack if isinstance(v, int | str) and str(v).isdigit()]

    # -- aliases -----------------------------------------------------------------------------
    def _set_alias(self, name: str, alias: str, version: int) -> None:
        self._call(
            f"setting {alias!r} of {name!r}",
            self._client.set_registered_model_alias,
            name,
            alias,
            str(version),
        )

    def _save_stack(self, name: str, stack: builtins.list[int]) -> None:
        self._call(
            f"model {name!r}",
            self._client.set_registered_model_tag,
            name,
            PREVIOUS_TAG,
            json.dumps(stack),
        )

    def promote(self, name: str, version: int) -> RegisteredVersion:
        """Make ``version`` the champion; the former champion is remembered for rollback.

        A ``challenger`` alias on the promoted version is removed (it has won).
        """
        target = self.get(_check_name(name), version)
        current = self.by_alias(name, CHAMPION)
        if current is not None and current.version == version:
            return target
        if current is not None:
            self._save_stack(name, [*self.previous_champions(name), current.version])
        self._set_alias(name, CHAMPION, version)
        if CHALLENGER in target.aliases:
            self._call(
                f"removing {CHALLENGER!r} of {name!r}",
                self._client.delete_registered_model_alias,
                name,
                CHALLENGER,
            )
        return self.get(name, version)

    def rollback(self, name: str) -> RegisteredVersion:
        """Make the previous champion the champion again (repeatable: it walks back in history)."""
        stack = self.previous_champions(_check_name(name))
        current = self.by_alias(name, CHAMPION)
        while stack:
            version = stack.pop()
            if current is not None and version == current.version:
                continue
            try:
                self.get(name, version)
            except NotFoundError:  # deleted since: skip it
                continue
            self._set_alias(name, CHAMPION, version)
            self._save_stack(name, stack)
            return self.get(name, version)
        raise InvalidRequestError(f"{name!r} has no previous champion to roll back to")

    # -- files -------------------------------------------------------------------------------
    def download(self, name: str, version: int) -> Path:
        """The local path of the registered file or directory.

        Local artefacts are used where they are (a GGUF file is not copied); remote ones are
        downloaded once into ``<data_dir>/registry/<name>/<version>/``.
        """
        found = self.get(name, version)
        uri = self._call(
            f"model {name!r} version {version}",
            self._client.get_model_version_download_uri,
            name,
            str(version),
        )
        parsed = urlparse(str(uri))
        if parsed.scheme in ("", "file"):
            local = Path(unquote(parsed.path))
            if local.exists():
                return local
            raise NotFoundError(f"the artefact of {name!r} version {version} is gone: {local}")
        target = self.settings.data_dir / "registry" / name / str(found.version)
        cached = target / Path(parsed.path).name
        if cached.exists():
            return cached
        target.mkdir(parents=True, exist_ok=True)
        path = self._call(
            f"downloading {name!r} version {version}",
            self._mlflow.artifacts.download_artifacts,
            artifact_uri=str(uri),
            dst_path=str(target),
        )
        return Path(path)


#: Version tags of an LLM registered as a LoRA adapter: its kind and the base it was trained on.
KIND_TAG = "kind"
ADAPTER_KIND = "lora_adapter"
BASE_REF_TAG = "base_ref"


@dataclass(frozen=True)
class ModelFiles:
    """What a model reference serves: a GGUF model (``None``: the bundled one) and an adapter.

    ``adapter`` is ``None`` for a merged model and for ``base``; for ``default`` it is the
    configured adapter (``llm.adapter``: the shipped one unless turned off).
    """

    model: Path | None
    adapter: Path | None = None


def resolve_llm_files(settings: Settings, ref: str) -> ModelFiles:
    """The files a model reference names; a registered adapter comes with its recorded base.

    ``ref``: ``base`` (the bundled model, bare), ``default`` (what the service serves when nothing
    is promoted: the configured model and adapter), a registry alias or version, or a ``.gguf``
    file (a LoRA adapter file is served on the bundled model). An adapter version's base is the
    reference in its ``base_ref`` tag, resolved the same way (``base`` when it has none).
    """
    from genai_factory.llm.llamacpp import resolve_adapter

    ref = ref.strip()
    if ref == "default":
        return ModelFiles(
            settings.llm.model_path,
            resolve_adapter(settings.llm.adapter, settings.llm.model_path),
        )
    if ref.endswith(".gguf") and _is_adapter_file(Path(ref).expanduser()):
        return ModelFiles(None, Path(ref).expanduser())
    found = _registered(settings, ref)
    if found is None or found.tags.get(KIND_TAG) != ADAPTER_KIND:
        return ModelFiles(resolve_llm(settings, ref))
    adapter = _gguf_in(ModelRegistry(settings).download(found.name, found.version))
    base_ref = found.tags.get(BASE_REF_TAG, "base")
    if base_ref in ("default", str(found.version)):
        raise ConfigurationError(f"{found.name} v{found.version}: invalid base {base_ref!r}")
    base = resolve_llm_files(settings, base_ref)
    if base.adapter is not None:
        raise ConfigurationError(
            f"{found.name} v{found.version} is an adapter on another adapter ({base_ref})"
        )
    return ModelFiles(base.model, adapter)


def agent_adapter_path(settings: Settings) -> Path | None:
    """The LoRA adapter ``agents.adapter`` names (``None``: the agent shares the assistant's).

    ``none`` or empty: no agent adapter. ``shipped``: the agent adapter shipped for the bundled
    model (trained on ``examples/shop.db``). ``default``: ``shipped`` when the agent runs the
    bundled model on ``examples/shop.db``, else none. A ``.gguf`` path: that file. Else an alias or version
    of ``mlops.agent_llm_name`` (what ``train llm --agent`` registers); that version must be a
    LoRA adapter on the bundled model.

    Raises:
        ConfigurationError: a missing file, or a version that is not an adapter on ``base``.
        NotFoundError: no such alias or version.
    """
    ref = settings.agents.adapter.strip()
    if ref in ("", "none"):
        return None
    if ref == "default":
        return _default_agent_adapter(settings)
    if ref == "shipped":
        return _shipped_agent_adapter(settings)
    if ref.endswith(".gguf"):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"agents.adapter: no such file: {path}")
        return path
    registry = ModelRegistry(settings)
    name = settings.mlops.agent_llm_name
    found = (
        registry.get(name, int(ref))
        if ref.isdigit()
        else registry.by_alias(name, _check_alias(ref))
    )
    if found is None:
        raise NotFoundError(f"{name!r} has no {ref!r} version yet")
    if found.tags.get(KIND_TAG) != ADAPTER_KIND or found.tags.get(BASE_REF_TAG, "base") != "base":
        raise ConfigurationError(
            f"agents.adapter: {name} v{found.version} is not a LoRA adapter on the bundled model"
        )
    return _gguf_in(registry.download(found.name, found.version))


def _default_agent_adapter(settings: Settings) -> Path | None:
    """``default``: the shipped agent adapter when the agent runs the bundled model on the bundled
    shop database (the one it was trained on), else none."""
    from genai_factory.config import bundled_shop_db
    from genai_factory.llm.llamacpp import SHIPPED_AGENT_ADAPTER, SMOLLM2_FILE

    model = settings.llm.model_path
    if model is not None and Path(model).name != SMOLLM2_FILE:
        return None
    shop, database = bundled_shop_db(), settings.agent_database()
    if shop is None or database is None or "://" in database:
        return None
    if Path(database).expanduser().resolve() != shop.resolve():
        return None
    return SHIPPED_AGENT_ADAPTER if SHIPPED_AGENT_ADAPTER.is_file() else None


def _shipped_agent_adapter(settings: Settings) -> Path:
    from genai_factory.llm.llamacpp import SHIPPED_AGENT_ADAPTER, SMOLLM2_FILE

    model = settings.llm.model_path
    if model is not None and Path(model).name != SMOLLM2_FILE:
        raise ConfigurationError("agents.adapter: shipped fits the bundled model only")
    if not SHIPPED_AGENT_ADAPTER.is_file():
        raise ConfigurationError(f"agents.adapter: {SHIPPED_AGENT_ADAPTER} is not installed")
    return SHIPPED_AGENT_ADAPTER


def _is_adapter_file(path: Path) -> bool:
    if not path.is_file():
        return False
    from genai_factory.mlops.training.adapter_export import read_adapter_alpha

    return read_adapter_alpha(path) is not None


def _registered(settings: Settings, ref: str) -> RegisteredVersion | None:
    """The registry version an alias or number names (``None`` for base or a file)."""
    if ref in ("", "base") or ref.endswith(".gguf"):
        return None
    registry = ModelRegistry(settings)
    name = settings.mlops.llm_name
    if ref.isdigit():
        return registry.get(name, int(ref))
    found = registry.by_alias(name, _check_alias(ref))
    if found is None:
        raise NotFoundError(f"{name!r} has no {ref!r} version yet")
    return found


def resolve_llm(settings: Settings, ref: str) -> Path | None:
    """The GGUF model file a model reference names; ``None`` for ``base`` (the bundled model).

    ``ref``: ``base``; an alias of ``mlops.llm_name`` (``champion``, ``challenger``); a version
    number (``"3"``); or the path of an existing ``.gguf`` file. A missing alias or version raises
    :class:`NotFoundError`; a version that is a LoRA adapter raises :class:`InvalidRequestError`
    (it is not a model on its own: :func:`resolve_llm_files` gives it with its base).
    """
    ref = ref.strip()
    if ref in ("", "base"):
        return None
    if ref.endswith(".gguf"):
        path = Path(ref).expanduser()
        if path.is_file():
            return path
        raise NotFoundError(f"no such GGUF file: {ref}")
    found = _registered(settings, ref)
    assert found is not None
    if found.tags.get(KIND_TAG) == ADAPTER_KIND:
        raise InvalidRequestError(
            f"{found.name} v{found.version} is a LoRA adapter on "
            f"{found.tags.get(BASE_REF_TAG, 'base')}, not a model on its own"
        )
    return _gguf_in(ModelRegistry(settings).download(found.name, found.version))


def _gguf_in(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted(path.rglob("*.gguf"))
    if not files:
        raise ConfigurationError(f"no .gguf file in the registered artefact {path}")
    return files[0]
