"""Guard names → guards: the one place configuration becomes guard objects (an allowlist).

``safety:`` settings may only name the guards of the table
:data:`genai_factory.components.GUARDS` (``injection``, ``pii``, ``toxicity``, ``groundedness``,
``prompt_leak``, each with the actions it accepts), whose factories are below; loading a config
never imports anything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import structlog

from genai_factory import components
from genai_factory.config import GuardSpec, RouteSafety, Settings
from genai_factory.safety.artefacts import GuardResources, load_resources, packaged_dir
from genai_factory.safety.groundedness import GroundednessGuard, PromptLeakGuard
from genai_factory.safety.guard import Guard
from genai_factory.safety.injection import InjectionGuard
from genai_factory.safety.pii import PIIDetector, PIIGuard, knowledge_terms
from genai_factory.safety.pipeline import RoutePolicy, SafetyPipeline, VerdictHook
from genai_factory.safety.redaction import redact
from genai_factory.safety.toxicity import ToxicityGuard

log = structlog.get_logger(__name__)

GuardFactory = Callable[[GuardSpec, GuardResources], Guard]


def injection_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    return InjectionGuard(resources.injection, action=spec.action, threshold=spec.threshold)  # type: ignore[arg-type]


def toxicity_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    return ToxicityGuard(resources.toxicity, action=spec.action, threshold=spec.threshold)  # type: ignore[arg-type]


def pii_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    return PIIGuard(PIIDetector(resources.names), action=spec.action, terms=resources.terms)  # type: ignore[arg-type]


def groundedness_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    threshold = spec.threshold if spec.threshold is not None else 0.5
    return GroundednessGuard(action=spec.action, min_support=threshold)  # type: ignore[arg-type]


def prompt_leak_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    return PromptLeakGuard(action=spec.action)  # type: ignore[arg-type]


#: Guard name → its factory and actions: the table of :mod:`genai_factory.components`.
GUARDS = components.GUARDS


def build_guard(spec: GuardSpec, resources: GuardResources) -> Guard:
    """The guard ``spec`` names, with its action and threshold.

    Raises:
        ConfigurationError: the guard is not registered.
    """
    factory = cast(GuardFactory, components.lookup(GUARDS, spec.guard, "guard").load())
    return factory(spec, resources)


def build_policy(route: RouteSafety, resources: GuardResources) -> RoutePolicy:
    def guards(specs: Sequence[GuardSpec]) -> tuple[Guard, ...]:
        return tuple(build_guard(spec, resources) for spec in specs)

    return RoutePolicy(
        input=guards(route.input), context=guards(route.context), output=guards(route.output)
    )


def artefact_dirs(settings: Settings) -> list[Path]:
    """Where artefacts are looked for, first match wins: the registry's champion of each guard
    (when the service serves champions), the data directory's, then the packaged ones."""
    champions: list[Path] = []
    if settings.mlops.serve_champion:
        from genai_factory.mlops.guard_champions import guard_champions

        try:
            champions = [directory for _, directory in guard_champions(settings).values()]
        except Exception as exc:  # an unreachable registry must not take the guards down
            log.warning("guard_champions_unavailable", error=str(exc))
    return [*champions, settings.safety_dir(), packaged_dir()]


class SafetyService:
    """The configured pipeline of a process, built when :meth:`load` has read the artefacts.

    Before :meth:`load` the pipeline runs rules-only guards (no classifier, no name tagger).
    """

    def __init__(self, settings: Settings, *, on_verdict: VerdictHook | None = None) -> None:
        self.settings = settings
        self.on_verdict = on_verdict
        self.resources = GuardResources()
        self.pipeline = self._build()

    def _build(self) -> SafetyPipeline:
        safety = self.settings.safety
        policies: dict[str, RoutePolicy] = {
            name: build_policy(route, self.resources) for name, route in safety.routes.items()
        }
        return SafetyPipeline(
            policies,
            reversible=safety.reversible_redaction,
            on_verdict=self.on_verdict,
            hold_chars=safety.hold_chars,
        )

    def load_blocking(self) -> None:
        self.resources = load_resources(artefact_dirs(self.settings))
        self.resources.terms = knowledge_terms(self.settings.rag.knowledge_dirs)
        fresh = self._build()
        fresh.stats = self.pipeline.stats
        self.pipeline.policies = fresh.policies

    async def load(self) -> None:
        """Read the artefacts in a worker thread, then rebuild the guards with them."""
        await asyncio.to_thread(self.load_blocking)

    def redactor(self) -> Callable[[str], str]:
        """PII redaction for logs and the interaction log (text in, text out)."""

        detectors: dict[int, tuple[object, PIIDetector]] = {}

        def redact_text(text: str) -> str:
            # One detector (and its memo) per name tagger: a new champion gets a new one.
            names = self.resources.names
            held = detectors.get(id(names))
            if held is None or held[0] is not names:
                detectors.clear()
                held = detectors[id(names)] = (names, PIIDetector(names))
            return redact(text, held[1].find(text))

        return redact_text

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.settings.safety.enabled, "artefacts": self.resources.versions()}
