"""The orchestrator's planner: where a question splits, and which specialist gets each step."""

from __future__ import annotations

import pytest

from genai_factory.assistant.planner import (
    is_own_question,
    make_plan,
    split_question,
)
from genai_factory.assistant.routing import DataTerms

SHOP = DataTerms.from_names(
    ["customers", "orders", "products", "order_items"],
    ["name", "email", "country", "signed_up", "price", "status", "quantity", "ordered_at"],
)
TWO_STEP = "What does the guide say the budget error is, and how many customers are from the US?"


def test_the_target_question_splits_into_a_documents_and_an_sql_step() -> None:
    plan = make_plan(TWO_STEP, SHOP)
    assert [(s.question, s.specialist) for s in plan.steps] == [
        ("What does the guide say the budget error is?", "documents"),
        ("How many customers are from the US?", "sql"),
    ]
    assert plan.multi_step and plan.needs_tools() and plan.overflow == ()
    assert "table" in plan.steps[1].features


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        # an 'and' inside one question is not a split
        ("How many customers and orders are there?", ["How many customers and orders are there?"]),
        (
            "What is the total of orders and the average price?",
            ["What is the total of orders and the average price?"],
        ),
        # two question marks, a semicolon, 'then'
        (
            "How many orders were cancelled? What is 15% of 240?",
            ["How many orders were cancelled?", "What is 15% of 240?"],
        ),
        (
            "list the products; how do I configure retries",
            ["List the products", "How do I configure retries?"],
        ),
        (
            "Count the customers from the US, then what is that times 3?",
            ["Count the customers from the US", "What is that times 3?"],
        ),
        # a short tail is joined back to its head
        ("What is the price of the mouse and why?", ["What is the price of the mouse and why?"]),
        ("What is the capital of France?", ["What is the capital of France?"]),
    ],
)
def test_split_points(question: str, parts: list[str]) -> None:
    assert split_question(question) == parts


def test_own_questions_need_an_opening_word_and_three_words() -> None:
    assert is_own_question("how many customers are there")
    assert not is_own_question("the average price")
    assert not is_own_question("and why")
    assert not is_own_question("why not")


def test_specialists_by_the_routing_score() -> None:
    plan = make_plan(
        "What is 17 * 23? How many orders were cancelled? How do I set up the gateway?", SHOP
    )
    assert [s.specialist for s in plan.steps] == ["calculator", "sql", "documents"]


def test_an_unavailable_specialist_hands_over_its_steps() -> None:
    plan = make_plan(TWO_STEP, SHOP, available=["documents", "calculator"])
    assert [s.specialist for s in plan.steps] == ["documents", "documents"]
    arithmetic = make_plan("What is 2 + 2? What is 3 * 3?", None, available=["sql"])
    assert [s.specialist for s in arithmetic.steps] == ["sql", "sql"]


def test_steps_beyond_the_limit_overflow() -> None:
    plan = make_plan("What is 1 + 1? What is 2 + 2? What is 3 + 3?", None, max_steps=2)
    assert [s.question for s in plan.steps] == ["What is 1 + 1?", "What is 2 + 2?"]
    assert [(s.index, s.question, s.specialist) for s in plan.overflow] == [
        (2, "What is 3 + 3?", "calculator")
    ]


def test_a_single_question_is_one_step() -> None:
    plan = make_plan("How many customers are from the US?", SHOP)
    assert not plan.multi_step and len(plan.steps) == 1


def test_the_plan_is_deterministic() -> None:
    assert make_plan(TWO_STEP, SHOP) == make_plan(TWO_STEP, SHOP)
