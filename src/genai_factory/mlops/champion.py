"""Serve the registry's ``champion`` LLM and guards, and follow promotions without a restart.

At start-up the service asks the registry for the champion of ``mlops.llm_name``; while it runs it
asks again every ``mlops.poll_s`` seconds. A new champion (a promotion or a rollback) is downloaded,
loaded on the shared model worker *beside* the serving one (a champion registered as a LoRA adapter
is loaded on its recorded base), then swapped in with
:meth:`SwappableModel.swap`: requests already running finish on the old weights, new ones go to the
new weights, none fails. When no champion is registered (or the alias is removed) the model as
shipped is served.

Guard classifiers follow the same rule: the champion of each ``<guard_prefix><guard>`` registered
model (``train guard`` registers challengers) is read before the data directory's and the shipped
artefacts (:func:`genai_factory.safety.registry.artefact_dirs`), and a change of champion rebuilds
the guards in place (:meth:`SafetyService.load`), again without a restart.

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
from genai_factory.mlops.guard_champions import guard_champions, registry_exists
from genai_factory.safety.registry import SafetyService

log = structlog.get_logger(__name__)

BASE = "base"


@dataclass(frozen=True)
class Champion:
    """What the registry names champion: its version label, local GGUF file (``None``: the
    configured model) and LoRA adapter (for ``base``: the configured one, ``llm.adapter``)."""

    version: str
    path: Path | None
    adapter: Path | None = None


def lookup_champion(settings: Settings) -> Champion:
    """The champion LLM right now (blocking: call it in a thread)."""
    if not registry_exists(settings):
        return _as_shipped(settings)
    from genai_factory.mlops.registry import ModelRegistry, resolve_llm_files

    found = ModelRegistry(settings).by_alias(settings.mlops.llm_name, "champion")
    if found is None:
        return _as_shipped(settings)
    files = resolve_llm_files(settings, str(found.version))
    return Champion(str(found.version), files.model, files.adapter)


def _as_shipped(settings: Settings) -> Champion:
    """The model as configured (with its adapter): what is served while nothing is promoted."""
    from genai_factory.llm.llamacpp import resolve_adapter

    llm = settings.llm
    return Champion(BASE, None, resolve_adapter(llm.adapter, llm.model_path))


class ChampionWatcher:
    """Keeps the service on the registry's champions: the LLM (through a :class:`SwappableModel`)
    and the guard classifiers (through the :class:`SafetyService`); either may be ``None``."""

    def __init__(
        self,
        settings: Settings,
        target: SwappableModel | None,
        worker: ModelWorker,
        safety: SafetyService | None = None,
    ) -> None:
        self.settings = settings
        self.target = target
        self.worker = worker
        self.safety = safety
        self._guards: dict[str, int] | None = None
        self._lock = asyncio.Lock()

    def _build(self, champion: Champion) -> ChatModel:
        llm = self.settings.llm
        name = (
            llm.model
            if champion.version == BASE
            else f"{self.settings.mlops.llm_name}:v{champion.version}"
        )
        return LlamaCppModel(
            champion.path or llm.model_path,
            name=name,
            n_ctx=llm.n_ctx,
            n_threads=llm.n_threads,
            worker=self.worker,
            adapter_path=champion.adapter,
            adapter_merge=llm.adapter_merge,
        )

    async def check(self) -> bool:
        """Follow the current champions. Returns True when something was swapped."""
        async with self._lock:
            guards = await self._check_guards()
            return await self._check_llm() or guards

    async def _check_guards(self) -> bool:
        if self.safety is None:
            return False
        found = await asyncio.to_thread(guard_champions, self.settings)
        versions = {guard: version for guard, (version, _) in found.items()}
        previous, self._guards = self._guards, versions
        if previous is None or previous == versions:
            return False  # the first look: the service's warm-up loads the guards itself
        await self.safety.load()
        log.info("guard_champions_serving", versions=versions)
        return True

    async def _check_llm(self) -> bool:
        if self.target is None:
            return False
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
