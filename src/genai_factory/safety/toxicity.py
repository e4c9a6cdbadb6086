"""The toxicity guard: a linear classifier on hashed n-grams, trained on labelled tweets.

Toxic means hate speech or offensive language (Davidson et al. classes 0 and 1). Text is read the
way the injection guard reads it (canonical, de-obfuscated such as ``f u c k`` or leetspeak, decoded),
and the worst score counts.
"""

from __future__ import annotations

from typing import Literal

from genai_factory.safety.guard import GuardContext, Verdict
from genai_factory.safety.memo import TextMemo
from genai_factory.safety.normalize import cached_variants, distinct_readings
from genai_factory.safety.textclf import HashedLinearModel

REASON = "toxicity"


class ToxicityGuard:
    """Blocks (or flags) toxic text. Without a trained model it allows everything."""

    name = "toxicity"

    def __init__(
        self,
        model: HashedLinearModel | None,
        *,
        action: Literal["block", "warn"] = "block",
        threshold: float | None = None,
    ) -> None:
        self.model = model
        self.action = action
        self.threshold = threshold if threshold is not None else (model.threshold if model else 1.0)
        # The score depends on the text alone (the model is fixed per guard).
        self._memo: TextMemo[float] = TextMemo(self._score)

    def score(self, text: str) -> float:
        return self._memo(text)

    def _score(self, text: str) -> float:
        if self.model is None or not text.strip():
            return 0.0
        # The injection guard reads the same text the same way: its features are reused.
        readings = distinct_readings(list(cached_variants(text)))
        return float(self.model.scores(readings).max())

    def check(self, text: str, context: GuardContext) -> Verdict:
        score = self.score(text)
        if score < self.threshold:
            return Verdict.allow(self.name, score=score)
        if self.action == "warn":
            return Verdict.warn(self.name, REASON, score=score)
        return Verdict.block(self.name, REASON, score=score)
