from __future__ import annotations

import pytest

from genai_factory.mlops.qa import (
    ABSTAIN,
    abstained,
    exact_match,
    extract_answer,
    normalize_answer,
    qa_metrics,
    qa_prompt,
    qa_target,
    score,
    token_f1,
)


def test_squad_normalisation() -> None:
    assert normalize_answer("The  Rankine cycle!") == "rankine cycle"
    assert normalize_answer("An apple, a pear.") == "apple pear"
    assert normalize_answer("  ") == ""


def test_exact_match_and_f1_known_values() -> None:
    assert exact_match("the Rankine cycle", "Rankine cycle") == 1.0
    assert exact_match("Rankine", "Rankine cycle") == 0.0
    # prediction 'rankine' vs gold 'rankine cycle': precision 1, recall 1/2 -> F1 2/3
    assert token_f1("Rankine", "the Rankine cycle") == pytest.approx(2 / 3)
    # 'steam power plant' vs 'power plant': P=2/3, R=1 -> F1 0.8
    assert token_f1("steam power plant", "power plant") == pytest.approx(0.8)
    assert token_f1("coal", "Rankine cycle") == 0.0


def test_best_gold_answer_counts() -> None:
    assert score("Rankine", ["the Rankine cycle", "Rankine"]) == (1.0, 1.0)


def test_abstention_phrases() -> None:
    assert abstained(ABSTAIN)
    assert abstained("Unanswerable.")
    assert abstained("The context does not mention it")
    assert abstained("")
    assert not abstained("seeds and fruit")


def test_unanswerable_scores_one_only_when_abstaining() -> None:
    assert score("unanswerable", []) == (1.0, 1.0)
    assert score("coal", []) == (0.0, 0.0)
    assert score("unanswerable", ["coal"]) == (0.0, 0.0)


def test_qa_metrics_aggregates() -> None:
    predictions = ["Rankine cycle", "unanswerable", "seeds", "Norway has ten"]
    golds = [["the Rankine cycle"], [], ["seeds and fruit"], []]
    metrics = qa_metrics(predictions, golds)
    assert metrics["n"] == 4
    assert metrics["exact_match"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert metrics["has_answer_f1"] == pytest.approx((1 + 0.5) / 2)
    assert metrics["f1"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert metrics["abstention_accuracy"] == pytest.approx(0.5)
    assert metrics["answered_rate"] == pytest.approx(0.75)
    assert 0 < metrics["bleu"] <= 100
    assert 0 < metrics["rouge_l"] <= 1


def test_perfect_answers_score_full_bleu_and_rouge() -> None:
    metrics = qa_metrics(["seeds and fruit here"], [["seeds and fruit here", "seeds"]])
    assert metrics["bleu"] == pytest.approx(100.0)
    assert metrics["rouge_l"] == pytest.approx(1.0)


def test_qa_metrics_needs_one_prediction_per_question() -> None:
    with pytest.raises(ValueError, match="one prediction"):
        qa_metrics(["a"], [])


def test_prompt_and_target_are_shared_with_training() -> None:
    messages = qa_prompt("Parrots eat seeds.", "What do parrots eat?")
    assert [m.role for m in messages] == ["system", "user"]
    assert "Parrots eat seeds." in messages[1].content
    assert ABSTAIN in messages[0].content
    closed = qa_prompt(None, "What do parrots eat?")
    assert "Context" not in closed[1].content
    assert qa_target(["seeds", "fruit"]) == "seeds"
    assert qa_target([]) == ABSTAIN


def test_extract_answer_takes_the_first_line_without_prefix() -> None:
    assert extract_answer("Answer: seeds\nbecause ...") == "seeds"
    assert extract_answer("\n\n  fruit  ") == "fruit"
    assert extract_answer("The answer is 27.2%") == "27.2%"
    assert (
        extract_answer('The answer to this question is: "internal strife"') == '"internal strife"'
    )
    assert extract_answer("Answers vary by region") == "Answers vary by region"
