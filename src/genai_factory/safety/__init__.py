"""Input and output guards: the ``Guard`` protocol, the guards, and the pipeline that runs them.

See ``docs/safety.md``. Import the pieces from their modules; the names below are the public API.
"""

from __future__ import annotations

from genai_factory.safety.guard import Finding, Guard, GuardContext, Verdict
from genai_factory.safety.model import GuardedModel
from genai_factory.safety.pipeline import RoutePolicy, SafetyPipeline, SafetyReport

__all__ = [
    "Finding",
    "Guard",
    "GuardContext",
    "GuardedModel",
    "RoutePolicy",
    "SafetyPipeline",
    "SafetyReport",
    "Verdict",
]
