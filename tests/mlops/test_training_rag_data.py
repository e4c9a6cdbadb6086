"""Fine-tuning rows in the assistant's RAG prompt: SQuAD as numbered sources, guide questions."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.mlops.qa import abstained, extract_answer
from genai_factory.mlops.training.data import SquadRecord, read_examples
from genai_factory.mlops.training.rag_data import (
    RAG_ABSTAIN,
    cited,
    document_examples,
    document_questions,
    paragraph_chunk,
    squad_rag_examples,
)
from genai_factory.rag.prompting import build_rag_messages

SYSTEM = "You are a test assistant."


def _chunk(position: int, heading: str, text: str, document: str = "guide") -> Chunk:
    return Chunk(
        id=f"{document}:{position}",
        document_id=document,
        text=text,
        position=position,
        title="Guide",
        source=f"{document}.md",
        heading=heading,
    )


GUIDE = [
    _chunk(
        0, "Models > Circuit breaker", "The circuit breaker opens after five failures in a row."
    ),
    _chunk(1, "Service > Port", "To change the port, set GENAI_SERVICE__PORT before starting."),
    _chunk(
        2, "Search > Embeddings", "The default embedder is all-MiniLM-L6-v2 with 384 dimensions."
    ),
    _chunk(3, "Keys > Budgets", "A budget is a spending limit in USD attached to one API key."),
    _chunk(4, "Logs", "Logs are structlog lines written to standard error by the service."),
]


def _record(id: str, context: str, answers: tuple[str, ...]) -> SquadRecord:
    return SquadRecord(id, "Steam", context, f"Question {id}?", not answers, answers, {})


def test_squad_rows_are_the_service_prompt_with_cited_answers() -> None:
    records = [
        _record("a", "Steam engines follow the Rankine cycle.", ("the Rankine cycle",)),
        _record("b", "Boilers burn coal in a furnace.", ("coal",)),
        _record("c", "Boilers burn coal in a furnace.", ()),
    ]
    rows = squad_rag_examples(records, system_prompt=SYSTEM, second_source_share=1.0, seed=3)
    for row, record in zip(rows, records, strict=True):
        prompt = row.messages[-1]["content"]
        assert prompt.count("[1] Steam\n") == 1 and prompt.count("[2] Steam\n") == 1
        if not record.answers:
            assert row.answer == RAG_ABSTAIN
            continue
        number = 1 if prompt.index(record.context) < prompt.index("[2] Steam") else 2
        assert row.answer == f"{record.answers[0]} [{number}]"
    assert {r.answer[-3:] for r in rows[:2]} == {"[1]", "[2]"} or len(rows) == 3
    single = squad_rag_examples(records[:1], system_prompt=SYSTEM, second_source_share=0.0)
    expected = build_rag_messages(
        records[0].question,
        [ScoredChunk(chunk=paragraph_chunk("a", "Steam", records[0].context), score=1.0)],
        system_prompt=SYSTEM,
        max_source_chars=2000,
    )
    assert [m["content"] for m in single[0].messages] == [m.content for m in expected]
    assert abstained(RAG_ABSTAIN)
    assert extract_answer("the Rankine cycle [2].") == "the Rankine cycle."


def test_citations_go_before_the_final_stop() -> None:
    assert cited("Port 8000.", 2) == "Port 8000 [2]."
    assert cited("8000", 1) == "8000 [1]"


def test_guide_questions_follow_the_patterns() -> None:
    questions = {q.question: q for q in document_questions(GUIDE)}
    assert questions["How do I change the port?"].answer.startswith("To change the port")
    assert "What is the default embedder?" in questions
    assert "What does the circuit breaker do?" in questions
    assert questions["What is a budget?"].pattern == "is"
    # one heading question per section (the templates vary by heading)
    assert sum(q.pattern == "heading" for q in questions.values()) == len(GUIDE)


def test_guide_rows_cite_the_right_source_or_decline() -> None:
    rows = document_examples(GUIDE, system_prompt=SYSTEM, sources=3, abstain_share=0.3, seed=1)
    assert rows and any(r.answer == RAG_ABSTAIN for r in rows)
    for row in rows:
        prompt = row.messages[-1]["content"]
        if row.answer == RAG_ABSTAIN:
            continue
        number = int(row.answer.rsplit("[", 1)[1].split("]")[0])
        sentence = row.answer.rsplit(" [", 1)[0]
        block = prompt.split(f"[{number}] ", 1)[1]
        assert block.split("\n", 2)[1].startswith(sentence[:30]), (row.answer, prompt)
        assert prompt.count("\n[") == 3  # three numbered sources


def test_train_data_builds_rag_rows_with_documents(qa_file: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Service\n\nThe service listens on port 8000 by default.\n\n"
        "## Keys\n\nTo create a key, run the keys create command.\n\n"
        "## Logs\n\nThe logs are structlog lines on standard error.\n\n"
        "## Budgets\n\nA budget is a spending limit in USD attached to one key.\n",
        encoding="utf-8",
    )
    out = tmp_path / "train.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "train", "data", "--squad", str(qa_file), "--out", str(out), "--docs", str(docs),
            "--no-feedback", "--unanswerable-share", "1", "--json",
        ],
        env={"GENAI_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["prompt"] == "rag" and report["documents"] > 0
    rows = read_examples(out)
    assert {r.source for r in rows} >= {"squad_rag"}
    assert any(r.source.startswith("docs_") for r in rows)
    assert all(r.messages[-1]["content"].startswith("Context:\n[1] ") for r in rows)
