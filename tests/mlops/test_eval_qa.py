from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_factory.cli import app
from genai_factory.config import Settings
from genai_factory.mlops.evaluation import evaluate_qa
from genai_factory.mlops.qa_eval import load_questions
from genai_factory.testing.fakes import FakeChatModel

from .conftest import oracle

SQUAD = Path(os.environ.get("GENAI_DATASETS", Path(__file__).parents[3] / "shared" / "datasets"))
SQUAD_QA = SQUAD / "squad_v2" / "qa.jsonl"


def test_perfect_model_scores_one(fake_settings: Settings, qa_file: Path) -> None:
    model = FakeChatModel([oracle(True)] * 4)  # type: ignore[list-item]
    report = evaluate_qa(fake_settings, qa_file, model=model, progress=False)
    assert report.metrics["exact_match"] == 1.0
    assert report.metrics["f1"] == 1.0
    assert report.metrics["abstention_accuracy"] == 1.0
    assert report.metrics["answered_rate"] == 0.5
    assert report.metrics["hallucination_rate"] == 0.0
    assert report.metrics["latency_p95_ms"] >= 0
    assert report.metrics["prompt_tokens"] > 0
    # the paragraph is in the prompt with --with-context, and not closed-book
    assert "Rankine" in model.calls[0][-1].content or "Parrots" in model.calls[0][-1].content


def test_wrong_model_scores_zero_and_hallucinates(fake_settings: Settings, qa_file: Path) -> None:
    replies = [oracle(False)] * 4
    model = FakeChatModel(replies)  # type: ignore[arg-type]
    report = evaluate_qa(fake_settings, qa_file, model=model, progress=False)
    assert report.metrics["exact_match"] == 0.0
    assert report.metrics["abstention_accuracy"] == 0.0
    assert report.metrics["answered_rate"] == 1.0


def test_unsupported_answers_count_as_hallucinations(
    fake_settings: Settings, qa_file: Path
) -> None:
    made_up = "Penguins migrate across the Sahara desert every winter."
    model = FakeChatModel([made_up] * 4)
    report = evaluate_qa(fake_settings, qa_file, model=model, progress=False, limit=2)
    assert report.metrics["hallucination_rate"] == 1.0


def test_closed_book_prompt_has_no_context(fake_settings: Settings, qa_file: Path) -> None:
    model = FakeChatModel(["unanswerable"] * 4)
    evaluate_qa(fake_settings, qa_file, model=model, progress=False, with_context=False)
    assert all("Context" not in call[-1].content for call in model.calls)


def test_with_context_asks_in_the_service_prompt(fake_settings: Settings, qa_file: Path) -> None:
    from genai_factory.rag.prompting import RAG_INSTRUCTIONS

    model = FakeChatModel(["Rankine [1]."] * 4)
    evaluate_qa(fake_settings, qa_file, model=model, progress=False, limit=1)
    system, user = model.calls[0]
    assert system.content == fake_settings.service.system_prompt
    assert user.content.startswith("Context:\n[1] ") and RAG_INSTRUCTIONS in user.content


def test_base_is_bare_and_default_is_what_the_service_serves(fake_settings: Settings) -> None:
    from genai_factory.llm.llamacpp import LlamaCppModel, shipped_adapter_path
    from genai_factory.mlops.qa_eval import load_model

    local = fake_settings.model_copy(
        update={"llm": fake_settings.llm.model_copy(update={"provider": "llamacpp"})}
    )
    base, default = load_model(local, "base"), load_model(local, "default")
    assert isinstance(base, LlamaCppModel) and base.adapter_path is None
    assert isinstance(default, LlamaCppModel) and default.adapter_path == shipped_adapter_path()
    assert base.model_path == default.model_path  # the same bundled weights under both
    # the shipped adapter's calibration comes with it; the bare model has none
    assert base.decline_shift == 0.0
    assert default.decline_shift == LlamaCppModel(adapter_path=shipped_adapter_path()).decline_shift
    tuned = local.model_copy(update={"llm": local.llm.model_copy(update={"decline_shift": -0.5})})
    assert load_model(tuned, "default").decline_shift == -0.5


def test_with_context_flags_answers_from_sources(fake_settings: Settings, qa_file: Path) -> None:
    from genai_factory.messages import ChatOptions, ChatResponse, Message

    seen: list[bool] = []

    class Spy(FakeChatModel):
        async def chat(
            self, messages: list[Message], options: ChatOptions | None = None
        ) -> ChatResponse:
            seen.append(bool(options and options.answer_from_sources))
            return await super().chat(messages, options)

    evaluate_qa(fake_settings, qa_file, model=Spy(["x"] * 4), progress=False, limit=1)
    evaluate_qa(
        fake_settings, qa_file, model=Spy(["x"] * 4), progress=False, limit=1, with_context=False
    )
    assert seen == [True, False]


def test_limit_is_a_deterministic_sample(qa_file: Path) -> None:
    first = [q.id for q in load_questions(qa_file, limit=2)]
    assert first == [q.id for q in load_questions(qa_file, limit=2)]
    assert len(set(first)) == 2
    assert {q.title for q in load_questions(qa_file, titles=["Birds"])} == {"Birds"}


def test_eval_qa_cli_json(cli_env: Path, qa_file: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "qa", "--dataset", str(qa_file), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    # the fake base model echoes the prompt: it never abstains
    assert body["answered_rate"] == 1.0 and body["n"] == 4
    assert body["model_ref"] == "default" and body["run_id"]
    import mlflow

    run = mlflow.get_run(body["run_id"])
    assert run.data.metrics["qa.f1"] == pytest.approx(body["f1"], abs=1e-4)
    assert run.data.tags["job"] == "eval_qa"


def test_eval_qa_cli_writes_every_answer(cli_env: Path, qa_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers" / "qa.jsonl"
    args = ["eval", "qa", "--dataset", str(qa_file), "--no-track", "--answers-out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    assert {"question", "answers", "reply", "answer", "f1", "abstained"} <= set(rows[0])
    blocked = tmp_path / "file"
    blocked.write_text("")
    refused = CliRunner().invoke(app, [*args[:-1], str(blocked / "qa.jsonl")])
    assert refused.exit_code == 1 and "cannot write" in " ".join(refused.output.split())


def test_eval_qa_cli_errors(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["eval", "qa", "--dataset", str(tmp_path / "no.jsonl")])
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.output.split())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    broken = runner.invoke(app, ["eval", "qa", "--dataset", str(bad), "--no-track"])
    assert broken.exit_code == 2 and "not a SQuAD question" in " ".join(broken.output.split())
    unknown = runner.invoke(
        app, ["eval", "qa", "--dataset", str(bad), "--model", "champion", "--no-track"]
    )
    assert unknown.exit_code == 2


@pytest.mark.slow
@pytest.mark.skipif(not SQUAD_QA.is_file(), reason="shared SQuAD data absent")
def test_eval_qa_with_the_bundled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app,
        ["eval", "qa", "--dataset", str(SQUAD_QA), "--limit", "5", "--json", "--no-track"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["n"] == 5 and body["model"].startswith("smollm2")
    assert 0.0 <= body["f1"] <= 1.0
    assert body["latency_p50_ms"] > 0
