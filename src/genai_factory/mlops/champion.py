"""Serve the registry's ``champion`` LLM and follow promotions without a restart.

At start-up the service asks the registry for the champion of ``mlops.llm_name``; while it runs it
asks again every ``mlops.poll_s`` seconds. A new champion (a promotion or a rollback) is downloaded,
loaded on the shared model worker *beside* the serving one, then swapped in with
:meth:`SwappableModel.swap`: requests already running finish on the old weights, new ones go to the
new weights, none fails. When no champion is registered (or the alias is removed) the model as
shipped is served.

The registry is only consulted when it exists: an embedded data directory without ``mlflow.db``
means nothing was ever registered, and MLflow is not even imported.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog

from genai_factory.config import Settings
from genai_factory.exceptions import GenAIFactoryError
from genai_factory.llm.base import ChatModel
from genai_factory.llm.llamacpp import LlamaCppModel
from genai_factory.llm.swappable import SwappableModel
from genai_factory.llm.worker import ModelWorker

log = structlog.get_logger(__name__)

BASE = "base"


@dataclass(frozen=True)
class Champion:
    """What the registry names champion: its version label and local GGUF file (``None``: base)."""

    version: str
    path: Path | None


def registry_exists(settings: Settings) -> bool:
    """True when a registry may hold versions: a tracking URI is configured or the file exists."""
    return settings.mlops.tracking_uri is not None or (settings.data_dir / "mlflow.db").exists()


def lookup_champion(settings: Settings) -> Champion:
    """The champion LLM right now (blocking: call it in a thread)."""
    if not registry_exists(settings):
        return Champion(BASE, None)
    from genai_factory.mlops.registry import ModelRegistry, resolve_llm

    found = ModelRegistry(settings).by_alias(settings.mlops.llm_name, "champion")
    if found is None:
        return Champion(BASE, None)
    return Champion(str(found.version), resolve_llm(settings, str(found.version)))


class ChampionWatcher:
    """Keeps a :class:`SwappableModel` serving the registry's champion LLM."""

    def __init__(self, settings: Settings, target: SwappableModel, worker: ModelWorker) -> None:
        self.settings = settings
        self.target = target
        self.worker = worker
        self._lock = asyncio.Lock()

    def _build(self, champion: Champion) -> ChatModel:
        llm = self.settings.llm
        name = (
            llm.model
            if champion.path is None
            else f"{self.settings.mlops.llm_name}:v{champion.version}"
        )
        return LlamaCppModel(
            champion.path or llm.model_path,
            name=name,
            n_ctx=llm.n_ctx,
            n_threads=llm.n_threads,
            worker=self.worker,
        )

    async def check(self) -> bool:
        """Swap to the current champion if it changed. Returns True when a swap happened."""
        async with self._lock:
            champion = await asyncio.to_thread(lookup_champion, self.settings)
            if champion.version == self.target.version:
                return False
            model = self._build(champion)
            load = getattr(model, "load", None)
            if load is not None:
                await load()
            await self.target.swap(model, version=champion.version)
            log.info("champion_serving", version=champion.version, model=model.name)
            return True

    async def run(self) -> None:
        """Poll until cancelled; a failed check is logged and retried at the next poll."""
        while True:
            await asyncio.sleep(self.settings.mlops.poll_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except GenAIFactoryError as exc:
                log.warning("champion_check_failed", error=exc.message)
            except Exception as exc:  # the registry is an external system: keep serving
                log.warning("champion_check_failed", error=f"{type(exc).__name__}: {exc}")
