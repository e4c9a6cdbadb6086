"""Budgets in process: periods, atomic reservations under concurrency, settling, ledger seeding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from genai_factory.config import Settings
from genai_factory.exceptions import BudgetExceeded, ProviderUnavailable
from genai_factory.gateway.assembly import open_gateway
from genai_factory.gateway.budgets import (
    Budgets,
    InProcessBudgetCounter,
    Outcome,
    budget_window,
    to_nano,
)
from genai_factory.gateway.context import RequestContext, enter_request, leave_request
from genai_factory.gateway.keys import ApiKey, new_key
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.metered import MeteredModel
from genai_factory.gateway.pricing import cost_usd
from genai_factory.gateway.service import GatewayService
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.messages import ChatOptions, ChatResponse, Message
from genai_factory.testing.fakes import FakeChatModel

from .conftest import PRICED_MODEL


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: list[SpendEntry] = []
        self.spent_calls = 0

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        self.rows.extend(entries)

    async def spent(self, key_id: str, since: datetime) -> float:
        self.spent_calls += 1
        return sum(r.actual_usd for r in self.rows if r.key_id == key_id and r.created_at >= since)

    async def entries(self, key_id: str | None = None, *, limit: int = 100) -> list[SpendEntry]:
        return self.rows[-limit:]


class SlowModel(FakeChatModel):
    """Answers after a pause, so concurrent calls overlap."""

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        await asyncio.sleep(0.02)
        return await super().chat(messages, options)


def test_periods_are_utc_days_and_months() -> None:
    now = datetime(2026, 12, 31, 23, 59, 59)
    day = budget_window("day", now)
    assert (day.label, day.start, day.end) == (
        "2026-12-31",
        datetime(2026, 12, 31),
        datetime(2027, 1, 1),
    )
    month = budget_window("month", now)
    assert (month.label, month.start, month.end) == (
        "2026-12",
        datetime(2026, 12, 1),
        datetime(2027, 1, 1),
    )
    assert budget_window("month", datetime(2026, 2, 10)).end == datetime(2026, 3, 1)


def test_amounts_are_whole_nano_dollars_rounded_up() -> None:
    assert to_nano(1.0) == 1_000_000_000
    assert to_nano(0.0001) == 100_000
    assert to_nano(1e-10) == 1
    assert to_nano(0) == 0


async def test_counter_reserves_atomically_under_concurrency() -> None:
    counter = InProcessBudgetCounter()
    results = await asyncio.gather(
        *(counter.reserve("k:2026-11", 7, 70, 3600, 0) for _ in range(100))
    )
    assert sum(outcome is Outcome.RESERVED for outcome, _ in results) == 10
    assert all(value <= 70 for _, value in results)
    await counter.settle("k:2026-11", -7)
    assert (await counter.reserve("k:2026-11", 7, 70, 3600, None))[0] is Outcome.RESERVED


async def test_counter_without_a_seed_asks_for_one() -> None:
    counter = InProcessBudgetCounter()
    assert await counter.reserve("fresh", 1, 10, 60, None) == (Outcome.UNSEEDED, 0)
    assert await counter.reserve("fresh", 1, 10, 60, 9) == (Outcome.RESERVED, 10)
    await counter.settle("fresh", -100)
    assert await counter.reserve("fresh", 0, 10, 60, None) == (Outcome.RESERVED, 0)


def budget_key(usd: float = 1.0) -> ApiKey:
    return new_key("b", budget_usd=usd, budget_period="month")[0]


async def test_reserve_then_settle_releases_the_difference() -> None:
    ledger = MemoryLedger()
    budgets = Budgets(InProcessBudgetCounter(), ledger)
    key = budget_key(1.0)
    first = await budgets.reserve(key, 0.6)
    with pytest.raises(BudgetExceeded, match=r"up to \$0.600000 .* \$0.400000 left of its \$1.00"):
        await budgets.reserve(key, 0.6)
    await budgets.settle(first, 0.1)
    second = await budgets.reserve(key, 0.6)
    assert second is not None
    with pytest.raises(BudgetExceeded, match="resets at"):
        await budgets.reserve(key, 0.31)
    assert await budgets.reserve(new_key("free")[0], 99.0) is None


async def test_a_restart_does_not_hand_out_a_fresh_budget() -> None:
    ledger = MemoryLedger()
    key = budget_key(1.0)
    ledger.rows.append(
        SpendEntry(key.id, PRICED_MODEL, 0.9, 0.8, 10, 10, datetime.now().replace(day=1), "ok")
    )
    fresh_counter = Budgets(InProcessBudgetCounter(), ledger)  # a new process
    with pytest.raises(BudgetExceeded):
        await fresh_counter.reserve(key, 0.3)
    assert await fresh_counter.reserve(key, 0.2) is not None
    assert ledger.spent_calls == 1  # seeded once, then the counter answers


async def test_a_burst_on_a_fresh_counter_reads_the_ledger_once() -> None:
    ledger = MemoryLedger()
    budgets = Budgets(InProcessBudgetCounter(), ledger)
    key = budget_key(1.0)
    held = await asyncio.gather(*(budgets.reserve(key, 0.1) for _ in range(10)))
    assert all(r is not None for r in held)
    assert ledger.spent_calls == 1


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[GatewayService]:
    service = await open_gateway(settings)
    yield service
    await service.aclose()


def worst_cost(messages: list[Message], max_tokens: int) -> float:
    from genai_factory.config import Price

    price = Price(input_per_million=1000, output_per_million=2000)
    return cost_usd(price, estimate_prompt_tokens(messages), max_tokens)


async def call_as(model: MeteredModel, key: ApiKey, messages: list[Message]) -> object:
    context = RequestContext(trace_id="t", key=key)
    token = enter_request(context)
    try:
        return await model.chat(messages, ChatOptions(max_tokens=20))
    except BudgetExceeded as exc:
        return exc
    finally:
        leave_request(token)
        await model.gateway.record(context.take_charges())


async def test_concurrent_calls_never_overspend(gateway: GatewayService) -> None:
    messages = [Message.user("How much does this cost?")]
    worst = worst_cost(messages, 20)
    key, _ = await gateway.create_key("b", budget_usd=worst * 10, rpm=None, tpm=None)
    model = MeteredModel(SlowModel(name=PRICED_MODEL), gateway)

    results = await asyncio.gather(*(call_as(model, key, messages) for _ in range(100)))

    answered = [r for r in results if isinstance(r, ChatResponse)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    # At least 10 fit; a few more may, on what finished calls released (each costs < its worst case).
    assert len(answered) >= 10 and refused and len(answered) + len(refused) == 100
    assert all("budget exceeded" in r.message for r in refused)
    rows = await gateway.ledger.entries(key.id, limit=1000)
    assert len(rows) == len(answered)
    assert sum(r.actual_usd for r in rows) <= key.budget_usd  # type: ignore[operator]
    assert all(0 < r.actual_usd <= r.reserved_usd == pytest.approx(worst) for r in rows)


async def test_settling_releases_unused_reservations(gateway: GatewayService) -> None:
    messages = [Message.user("short")]
    worst = worst_cost(messages, 20)
    key, _ = await gateway.create_key("b", budget_usd=worst * 3)
    model = MeteredModel(FakeChatModel(name=PRICED_MODEL), gateway)
    # One at a time, each call settles to its real (smaller) cost, so more than 3 fit.
    answered = 0
    for _ in range(10):
        if isinstance(await call_as(model, key, messages), ChatResponse):
            answered += 1
    rows = await gateway.ledger.entries(key.id)
    assert answered > 3
    assert sum(r.actual_usd for r in rows) <= worst * 3


async def test_failed_calls_release_everything_and_are_logged(gateway: GatewayService) -> None:
    messages = [Message.user("fail please")]
    key, _ = await gateway.create_key("b", budget_usd=worst_cost(messages, 20))
    model = MeteredModel(FakeChatModel([ProviderUnavailable("down")], name=PRICED_MODEL), gateway)
    with pytest.raises(ProviderUnavailable):
        await call_as(model, key, messages)
    assert isinstance(await call_as(model, key, messages), ChatResponse)  # the budget was released
    rows = await gateway.ledger.entries(key.id)
    assert sorted(r.status for r in rows) == ["error", "ok"]
    assert next(r for r in rows if r.status == "error").actual_usd == 0


async def test_streams_are_metered_too(gateway: GatewayService) -> None:
    messages = [Message.user("stream this answer")]
    key, _ = await gateway.create_key("b", budget_usd=1.0)
    model = MeteredModel(FakeChatModel(name=PRICED_MODEL), gateway)
    context = RequestContext(trace_id="s", key=key)
    token = enter_request(context)
    try:
        text = "".join([d.text async for d in model.stream(messages, ChatOptions(max_tokens=20))])
    finally:
        leave_request(token)
    assert text.startswith("echo:")
    [entry] = context.take_charges()
    assert entry.trace_id == "s" and entry.status == "ok" and entry.actual_usd > 0


async def test_calls_outside_a_request_are_not_metered(gateway: GatewayService) -> None:
    model = MeteredModel(FakeChatModel(name=PRICED_MODEL), gateway)
    response = await model.chat([Message.user("hi")])
    assert response.text == "echo: hi"
    assert await gateway.ledger.entries() == []


def test_tmp_path_is_isolated(tmp_path: Path, settings: Settings) -> None:
    assert str(settings.gateway_database_url()).endswith(str(tmp_path / "data" / "gateway.db"))
