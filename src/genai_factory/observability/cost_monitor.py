"""``CostMonitor``: tell someone when a key has spent a given share of its budget.

The gateway calls :meth:`CostMonitor.spend_recorded` with every batch of spend rows it writes to
the ledger. For each key with a budget the monitor then checks, in the background (never on the
request path), the key's spend in its current budget period (from the ledger). When the spend
reaches ``share`` of the budget (``observability.budget_alert_share``, default 0.8) it reports it
once per period and process: a warning log ``budget_threshold_passed``, the counter
``genai_budget_alerts_total{key_id}``, and, when a webhook URL is configured, a JSON ``POST`` to it.
Checks of one key never overlap: spend recorded during a check triggers one more check after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from genai_factory.gateway.budgets import budget_window
from genai_factory.gateway.keys import KeyStore, utc_now
from genai_factory.gateway.ledger import SpendEntry, SpendLedger
from genai_factory.observability.metrics import Metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BudgetAlert:
    """One key past the alert share of its budget in one period (the webhook's JSON body)."""

    key_id: str
    key_name: str
    budget_usd: float
    budget_period: str
    period_start: datetime
    period_end: datetime
    spent_usd: float
    spent_share: float
    alert_share: float
    event: str = "budget_threshold_passed"

    def payload(self) -> dict[str, Any]:
        values = asdict(self)
        values["period_start"] = self.period_start.isoformat() + "Z"
        values["period_end"] = self.period_end.isoformat() + "Z"
        return values


class CostMonitor:
    """Budget-share alerts (see the module docstring).

    Args:
        keys: the key store (for each key's budget).
        ledger: the spend ledger (for the spend in the period).
        share: the share of the budget that triggers the alert, in (0, 1].
        metrics: counts alerts and failed webhooks.
        webhook_url: where alerts are POSTed as JSON (``None``: nowhere).
        http: the client for the webhook (the monitor closes it).
        now: the clock (naive UTC), for tests.
        min_interval_s: the least time between two checks of one key (spend recorded meanwhile
            is checked once the interval has passed).
    """

    def __init__(
        self,
        *,
        keys: KeyStore,
        ledger: SpendLedger,
        share: float = 0.8,
        metrics: Metrics | None = None,
        webhook_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        now: Callable[[], datetime] = utc_now,
        min_interval_s: float = 1.0,
    ) -> None:
        self.keys = keys
        self.ledger = ledger
        self.share = share
        self.metrics = metrics
        self.webhook_url = webhook_url
        self.http = http
        self._now = now
        self._alerted: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        #: Under steady traffic a key's spend is recorded many times a second; it is checked (two
        #: queries, one summing the period's ledger rows) at most once per this interval.
        self.min_interval_s = min_interval_s
        self._last_check: dict[str, float] = {}

    def spend_recorded(self, entries: Sequence[SpendEntry]) -> None:
        """The gateway wrote ``entries`` to the ledger: check their keys in the background."""
        for key_id in {entry.key_id for entry in entries if entry.actual_usd > 0}:
            if key_id in self._running:
                self._again.add(key_id)
            else:
                task = asyncio.create_task(self._checks(key_id), name=f"cost-check-{key_id}")
                self._running[key_id] = task

    async def _checks(self, key_id: str) -> None:
        try:
            while True:
                last = self._last_check.get(key_id)
                if last is not None:
                    wait = last + self.min_interval_s - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                self._again.discard(key_id)
                self._last_check[key_id] = time.monotonic()
                try:
                    await self.check(key_id)
                except Exception as exc:
                    log.warning("cost_monitor_check_failed", key_id=key_id, error=str(exc))
                if key_id not in self._again:
                    return
        finally:
            self._running.pop(key_id, None)

    async def check(self, key_id: str) -> BudgetAlert | None:
        """Report ``key_id`` if it passed the alert share in this period and was not reported yet."""
        key = await self.keys.get(key_id)
        if key is None or not key.budget_usd:
            return None
        window = budget_window(key.budget_period, self._now())
        if self._alerted.get(key_id) == window.label:
            return None
        spent = await self.ledger.spent(key_id, window.start)
        if spent < self.share * key.budget_usd:
            return None
        self._alerted[key_id] = window.label
        alert = BudgetAlert(
            key_id=key.id,
            key_name=key.name,
            budget_usd=key.budget_usd,
            budget_period=key.budget_period,
            period_start=window.start,
            period_end=window.end,
            spent_usd=round(spent, 9),
            spent_share=round(spent / key.budget_usd, 6),
            alert_share=self.share,
        )
        fields = alert.payload()
        log.warning(fields.pop("event"), **fields)
        if self.metrics is not None:
            self.metrics.budget_alerted(key.id)
        await self._post(alert)
        return alert

    async def _post(self, alert: BudgetAlert) -> None:
        if not self.webhook_url or self.http is None:
            return
        try:
            response = await self.http.post(self.webhook_url, json=alert.payload())
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("budget_webhook_failed", key_id=alert.key_id, error=str(exc))
            if self.metrics is not None:
                self.metrics.webhook_failures.inc()

    async def drain(self) -> None:
        """Wait for the checks under way (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)
        self._running.clear()
        if self.http is not None:
            await self.http.aclose()
