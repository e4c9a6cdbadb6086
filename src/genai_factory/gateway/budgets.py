"""Per-key USD budgets per day or month (UTC): reserve the worst case first, settle the real cost after.

Before a model call the worst-case cost is *reserved*: added to the key's counter for the current
period in one atomic check-and-add that refuses when the counter would pass the budget. After the
call the reservation is *settled*: the difference between the real cost and the reservation is
added (usually negative: the unused part is released). Concurrent requests therefore can never
overspend: each one must fit on top of everything already spent or reserved. Amounts are integer
nano-dollars, so the counters add exactly.

Counters can be lost (a restart of the in-process backend, a flushed Redis). A counter that does
not exist yet for a period is *seeded* from the spend ledger before the first reservation, so a
restart does not hand out a fresh budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from genai_factory.exceptions import BudgetExceeded
from genai_factory.gateway.admission import BudgetAsk
from genai_factory.gateway.keys import ApiKey, BudgetPeriod, utc_now
from genai_factory.gateway.ledger import SpendLedger
from genai_factory.gateway.singleflight import SingleFlight

NANO_PER_USD = 1_000_000_000
#: Counters outlive their period by this much, so a late settlement still finds its counter.
COUNTER_GRACE_S = 86_400


def to_nano(usd: float) -> int:
    """USD as whole nano-dollars, rounded up (so reservations never round to less)."""
    return math.ceil(round(usd * NANO_PER_USD, 3))


def to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


@dataclass(frozen=True)
class BudgetWindow:
    """One budget period: ``[start, end)`` in UTC; ``label`` names it in counter keys."""

    label: str
    start: datetime
    end: datetime


def budget_window(period: BudgetPeriod, now: datetime) -> BudgetWindow:
    """The day or month (UTC) that contains ``now`` (a naive UTC datetime)."""
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return BudgetWindow(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return BudgetWindow(start.strftime("%Y-%m"), start, end)


class Outcome(Enum):
    RESERVED = "reserved"
    REFUSED = "refused"
    UNSEEDED = "unseeded"


class BudgetCounter(Protocol):
    """Atomic per-account counters of nano-dollars spent or reserved.

    Contract: ``reserve`` adds ``amount`` only when the result stays within ``limit``, in one atomic
    step (across processes for a shared backend) and returns the counter's value (after adding, or
    unchanged when refused). A missing counter is created from ``seed`` when one is given; without
    a seed ``reserve`` answers :attr:`Outcome.UNSEEDED` and changes nothing. ``settle`` adds
    ``delta`` (negative releases) to an existing counter and never lets it fall below zero.
    """

    async def reserve(
        self, account: str, amount: int, limit: int, ttl_s: int, seed: int | None
    ) -> tuple[Outcome, int]: ...

    async def settle(self, account: str, delta: int) -> None: ...

    async def aclose(self) -> None: ...


class InProcessBudgetCounter:
    """Counters in this process's memory; each call is atomic on the event loop."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counters: dict[str, tuple[int, float]] = {}

    async def reserve(
        self, account: str, amount: int, limit: int, ttl_s: int, seed: int | None
    ) -> tuple[Outcome, int]:
        now = self._clock()
        found = self._counters.get(account)
        if found is None or found[1] <= now:
            if seed is None:
                return Outcome.UNSEEDED, 0
            found = (seed, now + ttl_s)
            self._counters[account] = found
        value, expires = found
        if value + amount > limit:
            return Outcome.REFUSED, value
        self._counters[account] = (value + amount, expires)
        return Outcome.RESERVED, value + amount

    async def settle(self, account: str, delta: int) -> None:
        found = self._counters.get(account)
        if found is not None:
            self._counters[account] = (max(0, found[0] + delta), found[1])

    async def aclose(self) -> None:
        self._counters.clear()


@dataclass(frozen=True)
class Reservation:
    """A reservation held for one call; settle it exactly once."""

    account: str
    amount: int


class Budgets:
    """Budget policy for keys: the periods, the seeding from the ledger, and clear refusals."""

    def __init__(
        self,
        counter: BudgetCounter,
        ledger: SpendLedger,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.counter = counter
        self.ledger = ledger
        self._now = now
        self._seeds: SingleFlight[float] = SingleFlight()

    def ask(self, key: ApiKey, usd: float) -> tuple[BudgetAsk, BudgetWindow] | None:
        """The reservation of ``usd`` for ``key`` in the current period (no seed), with the period;
        ``None`` for a key without a budget."""
        if key.budget_usd is None:
            return None
        now = self._now()
        window = budget_window(key.budget_period, now)
        ttl = int((window.end - now).total_seconds()) + COUNTER_GRACE_S
        account = f"{key.id}:{window.label}"
        return BudgetAsk(account, to_nano(usd), to_nano(key.budget_usd), ttl), window

    async def seeded(self, key: ApiKey, ask: BudgetAsk, window: BudgetWindow) -> BudgetAsk:
        """``ask`` with the period's spend in the ledger as the seed of a missing counter."""
        spent = await self._seeds.run(ask.account, lambda: self.ledger.spent(key.id, window.start))
        return replace(ask, seed=to_nano(spent))

    @staticmethod
    def exceeded(
        key: ApiKey, ask: BudgetAsk, window: BudgetWindow, usd: float, used: int
    ) -> BudgetExceeded:
        """The refusal of ``ask`` (``usd``) when the counter holds ``used``."""
        return BudgetExceeded(_refusal(key, window, usd, used, ask.limit))

    async def reserve(self, key: ApiKey, usd: float) -> Reservation | None:
        """Reserve ``usd`` against ``key``'s budget; ``None`` for a key without a budget.

        Raises:
            BudgetExceeded: the amount does not fit in what is left of the period's budget.
        """
        asked = self.ask(key, usd)
        if asked is None:
            return None
        ask, window = asked
        account, amount, limit, ttl = ask.account, ask.amount, ask.limit, ask.ttl_s
        outcome, value = await self.counter.reserve(account, amount, limit, ttl, None)
        if outcome is Outcome.UNSEEDED:
            seed = (await self.seeded(key, ask, window)).seed
            outcome, value = await self.counter.reserve(account, amount, limit, ttl, seed)
        if outcome is Outcome.REFUSED:
            raise self.exceeded(key, ask, window, usd, value)
        return Reservation(account, amount)

    async def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        """Replace the reservation by the real cost (releasing the difference)."""
        if reservation is not None:
            await self.counter.settle(reservation.account, to_nano(actual_usd) - reservation.amount)


def _refusal(key: ApiKey, window: BudgetWindow, usd: float, used: int, limit: int) -> str:
    left = max(0, limit - used)
    period = "daily" if key.budget_period == "day" else "monthly"
    return (
        f"budget exceeded: this request may cost up to ${usd:.6f} but key {key.id} has "
        f"${to_usd(left):.6f} left of its ${key.budget_usd:.2f} {period} budget "
        f"(spent or reserved: ${to_usd(used):.6f}); it resets at {window.end.isoformat()}Z"
    )
