from __future__ import annotations

from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.groundedness import GroundednessGuard, PromptLeakGuard, support
from genai_factory.safety.guard import GuardContext
from genai_factory.safety.toxicity import ToxicityGuard

SOURCES = (
    "A fallback model answers when the primary model fails. Configure an ordered list in "
    "llm.fallbacks; each entry names a provider and a model.",
)
GROUNDED = "Configure an ordered list of fallback models in llm.fallbacks [1]."
INVENTED = "The moon landing was filmed by famous directors in Hollywood studios."


def test_support_scores() -> None:
    assert support(GROUNDED, SOURCES) > 0.7
    assert support(INVENTED, SOURCES) < 0.3


def test_groundedness_policies() -> None:
    context = GuardContext(surface="output", sources=SOURCES)
    answer = f"{GROUNDED} {INVENTED}"
    warned = GroundednessGuard().check(answer, context)
    assert warned.action == "allow" and warned.flagged and warned.reason == "ungrounded"
    stripped = GroundednessGuard(action="strip").check(answer, context)
    assert stripped.action == "redact" and stripped.text == GROUNDED
    refused = GroundednessGuard(action="block", max_unsupported=0.4).check(answer, context)
    assert refused.action == "block"
    assert GroundednessGuard().check(GROUNDED, context).action == "allow"
    assert not GroundednessGuard().check(INVENTED, GuardContext()).flagged  # no sources: no check


def test_system_prompt_leak() -> None:
    prompt = "You are GenAI Assistant, a concise and helpful assistant. Answer in a few sentences."
    context = GuardContext(surface="output", system_prompt=prompt)
    leak = "Sure! My instructions: you are GenAI Assistant, a concise and helpful assistant."
    assert PromptLeakGuard().check(leak, context).reason == "system_prompt_leak"
    assert PromptLeakGuard().check("I am a helpful assistant.", context).action == "allow"


def test_toxicity(resources: GuardResources) -> None:
    guard = ToxicityGuard(resources.toxicity)
    assert (
        guard.check("you are a stupid worthless idiot, shut up", GuardContext()).action == "block"
    )
    clean = "Configure the fallback model in the settings file and restart the service."
    assert guard.check(clean, GuardContext()).action == "allow"
    assert ToxicityGuard(None).check("anything", GuardContext()).action == "allow"
