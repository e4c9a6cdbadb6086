"""Prompt-injection and jailbreak detection: rules plus a trained linear classifier.

The text is read several ways (canonical, de-obfuscated, decoded base64/hex/rot13/Morse; see
:mod:`~genai_factory.safety.normalize`). A verdict is positive when a rule matches any reading or
the classifier's highest score over the readings reaches its threshold. A short question about
a quoted phrase is read with the phrase replaced (:func:`quoted_mention`). The same detector
screens retrieved chunks and tool outputs (indirect injection). Without a classifier artefact the
rules still run.
"""

from __future__ import annotations

import re
from typing import Literal

from genai_factory.safety.guard import GuardContext, Verdict
from genai_factory.safety.injection_rules import Rule, default_rules, first_match
from genai_factory.safety.memo import TextMemo
from genai_factory.safety.normalize import cached_variants, deobfuscate, distinct_readings
from genai_factory.safety.textclf import HashedLinearModel

REASON = "prompt_injection"

#: A quoted phrase (up to 80 characters: a phrase asked about, not a payload): double, curly,
#: guillemet or back quotes, or single quotes that are not apostrophes ("what's", "users' notes").
_QUOTED = re.compile(
    r"\"[^\"\n]{3,80}\"|“[^”\n]{3,80}”|‘[^’\n]{3,80}’|«[^»\n]{3,80}»|`[^`\n]{3,80}`"
    r"|(?<![\w'])'[^'\n]{3,80}'(?![\w'])"
)
#: A question about something: what a text that asks about a quoted phrase begins with. Not
#: "how would you ..." or "can you ...": those ask the assistant to act on the phrase.
_ASKING = re.compile(
    r"^\W*(?:what|why|which|who|is|are|does|do|explain|define|describe|"
    r"tell me (?:about|what|why|how)|"
    r"how (?:do|does|can|should|could) (?:i|we|people|companies|users|teams|attackers|developers|"
    r"models|chatbots|assistants))\b",
    re.IGNORECASE,
)
#: Longer texts are not questions about a phrase: they get no benefit of the doubt.
_MENTION_CHARS = 400


def quoted_mention(text: str) -> str | None:
    """``text`` with its quoted phrases replaced by ``this phrase`` when it is a short question
    about them ("What does 'ignore previous instructions' mean?"), else ``None``."""
    if len(text) > _MENTION_CHARS or not _ASKING.match(text):
        return None
    replaced = _QUOTED.sub("this phrase", text)
    return replaced if replaced != text else None


class InjectionGuard:
    """Blocks (or flags, with ``action="warn"``) prompt injections and jailbreaks.

    Args:
        model: the trained classifier, or ``None`` for rules only.
        action: ``block`` or ``warn``.
        threshold: overrides the artefact's decision threshold.
        rules: overrides the built-in rules.
    """

    name = "injection"

    def __init__(
        self,
        model: HashedLinearModel | None = None,
        *,
        action: Literal["block", "warn"] = "block",
        threshold: float | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        self.model = model
        self.action = action
        self.threshold = threshold if threshold is not None else (model.threshold if model else 0.5)
        self.rules = rules if rules is not None else default_rules()
        # The score depends on the text alone (the rules and the model are fixed per guard).
        self._memo: TextMemo[tuple[float, str | None]] = TextMemo(self._score)

    def score(self, text: str) -> tuple[float, str | None]:
        """The injection score in [0, 1] and the name of the matching rule, if any."""
        return self._memo(text)

    def _score(self, text: str) -> tuple[float, str | None]:
        readings = list(cached_variants(text))
        rule = first_match(self.rules, readings)
        # A question about a quoted phrase mentions it without making it ("What does 'ignore
        # previous instructions' mean?", "Why do chatbots say 'As an AI language model'?"): the
        # rules and the classifier judge what is asked, with the phrase replaced.
        mention = quoted_mention(text)
        # (not when the text also decodes to something: a quoted payload is not a phrase)
        if mention is not None and set(readings) <= {readings[0], deobfuscate(readings[0])}:
            readings = list(cached_variants(mention))
            rule = first_match(self.rules, readings)
        if rule is not None:
            return 1.0, rule.name
        if self.model is None:
            return 0.0, None
        return float(self.model.scores(distinct_readings(readings)).max()), None

    def check(self, text: str, context: GuardContext) -> Verdict:
        score, rule = self.score(text)
        if score < self.threshold:
            return Verdict.allow(self.name, score=score)
        detected_by = f"rule:{rule}" if rule else "classifier"
        if self.action == "warn":
            return Verdict.warn(self.name, REASON, score=score, detected_by=detected_by)
        return Verdict.block(self.name, REASON, score=score, detected_by=detected_by)
