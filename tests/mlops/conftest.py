"""Fixtures of the MLOps tests: a tiny SQuAD-format file and an environment for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUESTIONS = [
    {
        "id": "q1",
        "title": "Steam",
        "context": "Steam engines burn coal in a furnace. The Rankine cycle describes them.",
        "question": "Which cycle describes steam engines?",
        "is_impossible": False,
        "answers": ["the Rankine cycle", "Rankine"],
    },
    {
        "id": "q2",
        "title": "Steam",
        "context": "Steam engines burn coal in a furnace. The Rankine cycle describes them.",
        "question": "Who invented the furnace?",
        "is_impossible": True,
        "answers": [],
    },
    {
        "id": "q3",
        "title": "Birds",
        "context": "Parrots live in warm forests and eat seeds and fruit.",
        "question": "What do parrots eat?",
        "is_impossible": False,
        "answers": ["seeds and fruit"],
    },
    {
        "id": "q4",
        "title": "Birds",
        "context": "Parrots live in warm forests and eat seeds and fruit.",
        "question": "How many parrots live in Norway?",
        "is_impossible": True,
        "answers": [],
    },
]


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    return path


def oracle(correct: bool) -> object:
    """A reply function for FakeChatModel: the gold answer (or a wrong one) for each question."""

    def reply(messages: list[object]) -> str:
        prompt = str(getattr(messages[-1], "content", ""))
        for item in QUESTIONS:
            if item["question"] in prompt:
                answers = item["answers"]
                if not correct:
                    return "coal" if answers else "the furnace"
                return str(answers[0]) if answers else "unanswerable"
        return "unanswerable"

    return reply


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENAI_LLM__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_EMBEDDINGS__PROVIDER", "fake")
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
