"""The plan of a question made of several questions: its steps and the specialist of each.

:func:`make_plan` is deterministic (no model call): the same question always gives the same plan.

* **Split.** The question is cut after every ``?`` and at every ``;``; each piece is then cut at
  ``and`` / ``then`` (``, and`` / ``and then`` / ``, then`` ...) where the part after the cut is a
  question of its own (:func:`is_own_question`: it starts with a question or request word and has
  at least three words). A part that is not is joined back to the part before it, so
  "How many customers and orders are there?" stays one step and
  "What does the guide say the budget error is, and how many customers are from the US?" becomes
  two.
* **Classify.** Each step goes to a specialist by the schema-aware routing score of
  :mod:`~genai_factory.assistant.routing`: a step the score sends to the agent goes to
  ``calculator`` when only arithmetic fired, to ``sql`` otherwise; every other step goes to
  ``documents``. A specialist that is not available hands its steps to the next one that is
  (``sql`` → ``documents``, ``calculator`` → ``sql`` → ``documents``).

Steps beyond ``max_steps`` are kept in :attr:`Plan.overflow` (classified too) and reported as
skipped.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from genai_factory.assistant.routing import AGENT_THRESHOLD, DataTerms, agent_score

Specialist = Literal["documents", "sql", "calculator"]
SPECIALISTS: tuple[Specialist, ...] = ("documents", "sql", "calculator")

#: Where a step goes when its specialist is not available, in order of preference.
_FALLBACKS: dict[Specialist, tuple[Specialist, ...]] = {
    "documents": ("documents",),
    "sql": ("sql", "documents"),
    "calculator": ("calculator", "sql", "documents"),
}
#: Words a question (or a request) of its own starts with.
_ASKING = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "what which who whom whose when where why how is are was were does do did can could "
        "should would will"
    ).split()
)
_OPENERS = _ASKING | frozenset(
    ("list", "show", "give", "tell", "find", "name", "compute", "calculate", "count")
)
_SENTENCES = re.compile(r"(?<=\?)\s+|\s*;\s*")
_CONNECTOR = re.compile(r"(\s*,\s*(?:and\s+then|and|then)\s+|\s+(?:and\s+then|and|then)\s+)", re.I)
_WORD = re.compile(r"[A-Za-z0-9_%.'-]+")
MIN_QUESTION_WORDS = 3


@dataclass(frozen=True)
class PlannedStep:
    """One step: its question, the specialist that answers it and the routing features that fired."""

    index: int
    question: str
    specialist: Specialist
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The steps of a question, in the order they run, and the steps beyond the step limit."""

    question: str
    steps: tuple[PlannedStep, ...]
    overflow: tuple[PlannedStep, ...] = field(default_factory=tuple)

    @property
    def multi_step(self) -> bool:
        return len(self.steps) + len(self.overflow) > 1

    def needs_tools(self) -> bool:
        """Whether a step goes to a tool specialist (not only to the documents)."""
        return any(step.specialist != "documents" for step in self.steps)


def is_own_question(text: str) -> bool:
    """Whether ``text`` reads as a question of its own: a question or request word first, and at
    least :data:`MIN_QUESTION_WORDS` words."""
    words = _WORD.findall(text)
    return len(words) >= MIN_QUESTION_WORDS and words[0].lower() in _OPENERS


def split_question(question: str) -> list[str]:
    """The parts of ``question`` (see the module docstring); one part when it does not split."""
    parts: list[str] = []
    for sentence in _SENTENCES.split(question.strip()):
        if sentence.strip():
            parts += _split_connectors(sentence)
    return [_tidy(part) for part in parts if _tidy(part)] or [question.strip()]


def _split_connectors(sentence: str) -> list[str]:
    pieces = _CONNECTOR.split(sentence)
    parts = [pieces[0]]
    for connector, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        if is_own_question(piece) and is_own_question(parts[-1]):
            parts.append(piece)
        else:
            parts[-1] += connector + piece
    return parts


def _tidy(part: str) -> str:
    text = part.strip().strip(",;").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    if text[-1] not in ".?!" and is_own_question(text) and _first_word(text) in _ASKING:
        text += "?"
    return text


def _first_word(text: str) -> str:
    words = _WORD.findall(text)
    return words[0].lower() if words else ""


def classify(
    question: str, terms: DataTerms | None, available: Collection[Specialist] = SPECIALISTS
) -> tuple[Specialist, tuple[str, ...]]:
    """The specialist of one step, and the routing features that decided it."""
    score, fired = agent_score(question, terms)
    wanted: Specialist = "documents"
    if score >= AGENT_THRESHOLD:
        data = {"sql", "table", "column", "lookup"} & set(fired)
        wanted = "calculator" if "arithmetic" in fired and not data else "sql"
    for candidate in _FALLBACKS[wanted]:
        if candidate in available:
            return candidate, tuple(fired)
    return wanted, tuple(fired)


def make_plan(
    question: str,
    terms: DataTerms | None,
    *,
    available: Collection[Specialist] = SPECIALISTS,
    max_steps: int = 4,
) -> Plan:
    """The plan of ``question``: at most ``max_steps`` steps, the rest in ``overflow``."""
    steps = []
    for index, part in enumerate(split_question(question)):
        specialist, features = classify(part, terms, available)
        steps.append(PlannedStep(index, part, specialist, features))
    return Plan(question, tuple(steps[:max_steps]), tuple(steps[max_steps:]))
