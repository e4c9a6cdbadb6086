from __future__ import annotations

import pytest

from genai_factory.exceptions import SafetyViolation
from genai_factory.safety import Guard, GuardContext, RoutePolicy, SafetyPipeline, Verdict
from genai_factory.safety.guard import Finding


class Upper:
    """Redacts by upper-casing (to see the order guards run in)."""

    name = "upper"

    def check(self, text: str, context: GuardContext) -> Verdict:
        return Verdict.redact(self.name, "test", text.upper())


class BlockWord:
    name = "block_word"

    def __init__(self, word: str) -> None:
        self.word = word
        self.seen: list[str] = []

    def check(self, text: str, context: GuardContext) -> Verdict:
        self.seen.append(text)
        if self.word in text:
            return Verdict.block(self.name, "bad_word", findings=(Finding("WORD", 0, 1),))
        return Verdict.allow(self.name)


def test_guards_satisfy_the_protocol() -> None:
    assert isinstance(Upper(), Guard)
    assert isinstance(BlockWord("x"), Guard)


def test_input_guards_run_in_order_on_the_redacted_text() -> None:
    blocker = BlockWord("zzz")
    pipeline = SafetyPipeline({"default": RoutePolicy(input=(Upper(), blocker))})
    checked = pipeline.check_input("hello")
    assert checked.text == "HELLO"
    assert checked.redacted
    assert blocker.seen == ["HELLO"]
    assert checked.summaries()[0]["guard"] == "upper"


def test_a_block_raises_with_the_reason_code_and_is_counted() -> None:
    pipeline = SafetyPipeline({"default": RoutePolicy(input=(BlockWord("evil"),))})
    with pytest.raises(SafetyViolation) as caught:
        pipeline.check_input("an evil plan")
    assert caught.value.reason == "bad_word"
    assert (caught.value.guard, caught.value.stage) == ("block_word", "input")
    assert pipeline.stats["input:block_word:block:bad_word"] == 1


def test_routes_fall_back_to_default() -> None:
    pipeline = SafetyPipeline(
        {
            "default": RoutePolicy(output=(BlockWord("secret"),)),
            "chat": RoutePolicy(output=()),
        }
    )
    assert pipeline.check_output("a secret", route="chat").text == "a secret"
    with pytest.raises(SafetyViolation):
        pipeline.check_output("a secret", route="rag")


def test_context_screening_drops_and_reports() -> None:
    pipeline = SafetyPipeline({"default": RoutePolicy(context=(BlockWord("inject"),))})
    kept, dropped = pipeline.screen_context([("a", "fine"), ("b", "inject me"), ("c", "ok")])
    assert kept == [0, 2]
    assert dropped == [{"source_id": "b", "reason": "bad_word", "guard": "block_word"}]
    assert pipeline.stats["context:dropped"] == 1


def test_on_verdict_hook_sees_flagged_verdicts() -> None:
    seen: list[tuple[str, str, str]] = []
    pipeline = SafetyPipeline(
        {"default": RoutePolicy(input=(Upper(),))},
        on_verdict=lambda surface, route, verdict: seen.append((surface, route, verdict.guard)),
    )
    pipeline.check_input("x", route="chat")
    assert seen == [("input", "chat", "upper")]
