"""One key's limits and budget decided together: a backend that admits a model call in one step.

A shared backend (Redis) pays a network round trip per decision. :class:`KeyAdmission` lets it take
the requests-per-minute entry, the tokens-per-minute entry and the budget reservation of one call
in a single atomic step, all or nothing: when one of them refuses, none of the others is recorded.
Settling the call (the real tokens, the real cost) is one step too. The in-process backends do
not need this: :class:`~genai_factory.gateway.service.GatewayService` then calls the limiter and
the budget counter one after the other, as each of them is atomic on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Refusal(Enum):
    """Which decision refused a combined admission (``UNSEEDED``: the budget counter is missing)."""

    RPM = "rpm"
    TPM = "tpm"
    BUDGET = "budget"
    UNSEEDED = "unseeded"


@dataclass(frozen=True)
class BudgetAsk:
    """A reservation to make: ``amount`` nano-dollars on ``account`` if it stays within ``limit``.

    A missing counter is created from ``seed`` (with a time to live of ``ttl_s``) when one is given.
    """

    account: str
    amount: int
    limit: int
    ttl_s: int
    seed: int | None = None


@dataclass(frozen=True)
class Decision:
    """The answer to a combined admission.

    ``refused`` is ``None`` when everything was recorded. ``retry_after_s`` is set for a rate
    refusal (``inf`` when the weight exceeds the limit); ``budget_used`` is the budget counter's
    value (after the reservation, or unchanged when refused). The tickets name the logged entries.
    """

    refused: Refusal | None
    retry_after_s: float = 0.0
    budget_used: int = 0
    rpm_ticket: str = ""
    tpm_ticket: str = ""


class KeyAdmission(Protocol):
    """Atomic admission and settlement of one key's model call (see the module docstring).

    ``admit`` checks, in this order, ``rpm`` (weight 1), ``tpm`` (weight ``tokens``) and
    ``budget``, each skipped when ``None``, over sliding windows of ``window_s``; it records all of
    them or none. ``settle`` sets the weight of the tokens entry ``tpm_ticket`` (when given) to
    ``tokens`` and adds ``delta`` to the budget ``account`` (when given), as the limiter's
    ``adjust`` and the counter's ``settle`` do.
    """

    async def admit(
        self,
        key_id: str,
        *,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        budget: BudgetAsk | None,
        window_s: float,
    ) -> Decision: ...

    async def settle(
        self,
        key_id: str,
        *,
        tpm_ticket: str,
        tokens: int,
        account: str | None,
        delta: int,
    ) -> None: ...
