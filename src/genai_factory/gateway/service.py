"""``GatewayService``: authenticate keys, apply their limits and budgets, keep the spend ledger.

Per HTTP request: :meth:`authenticate` the presented key, then :meth:`admit_request` (requests per
minute). Per model call, made by :class:`~genai_factory.gateway.metered.MeteredModel`:
:meth:`reserve_call` (tokens per minute and the worst-case cost, both for the call's real prompt
and its ``max_tokens``) before, :meth:`settle_call` (the real tokens and cost) after. The spend
entries are written by :meth:`record`.

With a :class:`~genai_factory.gateway.admission.KeyAdmission` (Redis), a model call's tokens and
budget are taken in one step, and so is their settlement. The middleware may then leave a request's
requests-per-minute entry *pending* on its :class:`~genai_factory.gateway.context.RequestContext`
(:attr:`GatewayService.defers_rpm`): the request's first model call takes it in the same step, so
a request with one model call costs one round trip to be admitted. A pending entry that no model
call took (none was made, or one was refused) is taken by :meth:`admit_pending` before the
response starts, so every request still counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import structlog

from genai_factory.exceptions import (
    AuthenticationError,
    BudgetExceeded,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceeded,
)
from genai_factory.gateway.admission import KeyAdmission, Refusal
from genai_factory.gateway.budgets import Budgets, Reservation, to_nano
from genai_factory.gateway.context import RequestContext, current_request
from genai_factory.gateway.keys import ApiKey, BudgetPeriod, KeyStore, key_id_of, matches, new_key
from genai_factory.gateway.keys import utc_now as _utc_now
from genai_factory.gateway.ledger import SpendEntry, SpendLedger
from genai_factory.gateway.pricing import PriceBook, cost_usd
from genai_factory.gateway.ratelimit import RateLimiter
from genai_factory.gateway.singleflight import SingleFlight
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.messages import ChatResponse, Message

log = structlog.get_logger(__name__)

WINDOW_S = 60.0
_CACHE_MAX = 10_000
MISSING_KEY = (
    "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
    "(create one with `genai-factory keys create --name NAME`)"
)


@dataclass(frozen=True)
class GatewayHooks:
    """Observers of the gateway (metrics, the cost monitor), called synchronously.

    ``on_refusal(reason)``: a limit or budget refused a request (``rpm``, ``tpm``,
    ``tpm_exceeds_limit``, ``budget``). ``on_recorded(entries)``: spend rows were written.
    """

    on_refusal: Callable[[str], None] | None = None
    on_recorded: Callable[[Sequence[SpendEntry]], None] | None = None


@dataclass(frozen=True)
class CallHold:
    """What :meth:`GatewayService.reserve_call` took for one model call; settle it once."""

    key: ApiKey
    prompt_tokens: int
    max_tokens: int
    reserved_usd: float
    tpm_ticket: str
    reservation: Reservation | None


class GatewayService:
    """The gateway of one process. ``enforcing`` is false when auth is off (no keys, no limits).

    Args:
        keys: the key store.
        ledger: the spend ledger.
        limiter: the rate limiter (in-process or Redis).
        budgets: the budget policy over its counter (in-process or Redis).
        prices: the model chain's prices.
        enforcing: whether requests need a key (limits and budgets apply only with a key).
        key_cache_s: how long a looked-up key is reused; a revocation elsewhere takes this long.
        closers: called by :meth:`aclose` (database engine, Redis client).
        hooks: the observers of refusals and recorded spend.
        admission: admits and settles a call's limits and budget in one step; it must keep the
            same counters as ``limiter`` and ``budgets`` (the Redis backends on one client).
    """

    def __init__(
        self,
        *,
        keys: KeyStore,
        ledger: SpendLedger,
        limiter: RateLimiter,
        budgets: Budgets,
        prices: PriceBook,
        enforcing: bool,
        key_cache_s: float = 5.0,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        hooks: GatewayHooks | None = None,
        admission: KeyAdmission | None = None,
    ) -> None:
        self.keys = keys
        self.ledger = ledger
        self.limiter = limiter
        self.budgets = budgets
        self.prices = prices
        self.enforcing = enforcing
        self.key_cache_s = key_cache_s
        self._closers = list(closers)
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._lookups: SingleFlight[ApiKey | None] = SingleFlight()
        self.hooks = hooks or GatewayHooks()
        self.admission = admission

    @property
    def defers_rpm(self) -> bool:
        """Whether a request's requests per minute may wait for its first model call (see the
        module docstring): only when that call can take them in the same step."""
        return self.admission is not None

    def _refused(self, reason: str) -> None:
        if self.hooks.on_refusal is not None:
            self.hooks.on_refusal(reason)

    # -- keys ---------------------------------------------------------------------------------

    async def _lookup(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self._lookups.run(key_id, lambda: self.keys.get(key_id))
        now = time.monotonic()
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key_id] = (found, now + self.key_cache_s)
        return found

    async def authenticate(self, presented: str | None) -> ApiKey:
        """The active key for ``presented``.

        Raises:
            AuthenticationError: no key, a malformed one, or an unknown or revoked one.
        """
        if not presented:
            raise AuthenticationError(MISSING_KEY)
        key_id = key_id_of(presented)
        if key_id is None:
            raise AuthenticationError("malformed API key: keys look like gf_<12 hex>_<secret>")
        record = await self._lookup(key_id)
        if record is None or not matches(presented, record.key_hash):
            raise AuthenticationError("invalid API key")
        if not record.active:
            raise AuthenticationError(f"API key {key_id} was revoked")
        return record

    async def create_key(
        self,
        name: str,
        *,
        admin: bool = False,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        budget_period: BudgetPeriod = "month",
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns the record and the plaintext, which is never stored."""
        record, plaintext = new_key(
            name, admin=admin, rpm=rpm, tpm=tpm, budget_usd=budget_usd, budget_period=budget_period
        )
        await self.keys.add(record)
        return record, plaintext

    async def revoke_key(self, key_id: str) -> None:
        """Revoke a key (effective at once in this process, within ``key_cache_s`` elsewhere).

        Raises:
            NotFoundError: no active key has this id.
        """
        if not await self.keys.revoke(key_id):
            raise NotFoundError(f"no active API key with id {key_id}")
        self._cache.pop(key_id, None)

    # -- limits -------------------------------------------------------------------------------

    async def admit_request(self, key: ApiKey) -> None:
        """Count one request against the key's requests per minute.

        Raises:
            RateLimitExceeded: the key made ``rpm`` requests in the last minute.
        """
        if key.rpm is None:
            return
        admission = await self.limiter.acquire(f"{key.id}:rpm", 1, key.rpm, WINDOW_S)
        if not admission.allowed:
            self._refuse_rpm(key, admission.retry_after_s)

    async def admit_pending(self, context: RequestContext | None = None) -> None:
        """Take the request's pending requests-per-minute entry now, if it has one.

        Raises:
            RateLimitExceeded: the key made ``rpm`` requests in the last minute.
        """
        context = context or current_request()
        if context is not None and context.rpm_pending and context.key is not None:
            context.rpm_pending = False
            await self.admit_request(context.key)

    def _refuse_rpm(self, key: ApiKey, retry_after_s: float) -> NoReturn:
        self._refused("rpm")
        wait = _whole_seconds(retry_after_s)
        raise RateLimitExceeded(
            f"rate limit exceeded: key {key.id} may make {key.rpm} requests per minute; "
            f"retry in {wait} s",
            retry_after=wait,
        )

    async def _admit_tokens(self, key: ApiKey, tokens: int) -> str:
        if key.tpm is None:
            return ""
        admission = await self.limiter.acquire(f"{key.id}:tpm", tokens, key.tpm, WINDOW_S)
        if admission.allowed:
            return admission.ticket
        self._refuse_tokens(key, tokens, admission.retry_after_s)

    def _refuse_tokens(self, key: ApiKey, tokens: int, retry_after_s: float) -> NoReturn:
        if math.isinf(retry_after_s):
            self._refused("tpm_exceeds_limit")
            raise InvalidRequestError(
                f"this request may use up to {tokens} tokens (prompt and max_tokens), more than "
                f"key {key.id}'s limit of {key.tpm} tokens per minute; lower max_tokens or "
                "shorten the query"
            )
        self._refused("tpm")
        wait = _whole_seconds(retry_after_s)
        raise RateLimitExceeded(
            f"token rate limit exceeded: key {key.id} may use {key.tpm} tokens per minute and "
            f"this request may use up to {tokens}; retry in {wait} s",
            retry_after=wait,
        )

    # -- model calls --------------------------------------------------------------------------

    def _worst_cost(self, key: ApiKey, prompt_tokens: int, max_tokens: int) -> float:
        try:
            price = self.prices.worst_price()
        except ConfigurationError:
            if key.budget_usd is not None:
                raise
            return 0.0
        return cost_usd(price, prompt_tokens, max_tokens)

    async def reserve_call(
        self,
        key: ApiKey,
        messages: Sequence[Message],
        max_tokens: int,
        *,
        context: RequestContext | None = None,
    ) -> CallHold:
        """Take the call's worst-case tokens (per minute) and cost (budget) before it is made, and
        ``context``'s pending requests-per-minute entry with them.

        Raises:
            RateLimitExceeded: the request (requests per minute) or the tokens (tokens per minute)
                do not fit in the key's limits yet.
            InvalidRequestError: the tokens can never fit in the key's tokens per minute.
            BudgetExceeded: the worst-case cost does not fit in what is left of the budget.
            ConfigurationError: the key has a budget and a model of the chain has no price.
        """
        prompt_tokens = estimate_prompt_tokens(messages)
        if self.admission is not None:
            return await self._reserve_at_once(key, prompt_tokens, max_tokens, context)
        await self.admit_pending(context)
        ticket = await self._admit_tokens(key, prompt_tokens + max_tokens)
        try:
            worst = self._worst_cost(key, prompt_tokens, max_tokens)
            reservation = await self.budgets.reserve(key, worst)
        except BaseException as exc:
            if isinstance(exc, BudgetExceeded):
                self._refused("budget")
            if ticket:
                await self.limiter.adjust(f"{key.id}:tpm", ticket, 0)
            raise
        return CallHold(key, prompt_tokens, max_tokens, worst, ticket, reservation)

    async def _reserve_at_once(
        self,
        key: ApiKey,
        prompt_tokens: int,
        max_tokens: int,
        context: RequestContext | None,
    ) -> CallHold:
        """:meth:`reserve_call` in one step of the :class:`KeyAdmission` (all or nothing)."""
        assert self.admission is not None
        tokens = prompt_tokens + max_tokens
        worst = self._worst_cost(key, prompt_tokens, max_tokens)
        asked = self.budgets.ask(key, worst)
        pending = context is not None and context.rpm_pending and key.rpm is not None
        if not pending and key.tpm is None and asked is None:
            return CallHold(key, prompt_tokens, max_tokens, worst, "", None)
        if context is not None:
            context.rpm_pending = False  # taken here, or given back below
        ask = asked[0] if asked is not None else None
        try:
            decision = await self.admission.admit(
                key.id,
                rpm=key.rpm if pending else None,
                tpm=key.tpm,
                tokens=tokens,
                budget=ask,
                window_s=WINDOW_S,
            )
            if decision.refused is Refusal.UNSEEDED and asked is not None:
                ask = await self.budgets.seeded(key, *asked)
                decision = await self.admission.admit(
                    key.id,
                    rpm=key.rpm if pending else None,
                    tpm=key.tpm,
                    tokens=tokens,
                    budget=ask,
                    window_s=WINDOW_S,
                )
        except BaseException:
            if pending and context is not None:
                context.rpm_pending = True
            raise
        if decision.refused is None:
            reservation = Reservation(ask.account, ask.amount) if ask is not None else None
            return CallHold(key, prompt_tokens, max_tokens, worst, decision.tpm_ticket, reservation)
        if decision.refused is Refusal.RPM:
            self._refuse_rpm(key, decision.retry_after_s)
        if pending and context is not None:
            context.rpm_pending = True  # nothing was recorded: the request still counts
        if decision.refused is Refusal.TPM:
            self._refuse_tokens(key, tokens, decision.retry_after_s)
        assert ask is not None and asked is not None
        self._refused("budget")
        raise self.budgets.exceeded(key, ask, asked[1], worst, decision.budget_used)

    def _actual_cost(self, hold: CallHold, response: ChatResponse) -> float:
        usage = response.usage
        try:
            price = self.prices.price_of(response.model)
        except ConfigurationError:
            if hold.reservation is not None:
                raise
            return 0.0
        return cost_usd(price, usage.prompt_tokens, usage.completion_tokens)

    async def settle_call(self, hold: CallHold, response: ChatResponse | None) -> SpendEntry:
        """Replace the reservations by the real usage; ``response=None`` when the call failed.

        A failed call is charged nothing: its reservation and tokens are released in full.
        """
        if response is None:
            model = self.prices.chain[0][1] if self.prices.chain else ""
            entry = SpendEntry(
                hold.key.id, model, hold.reserved_usd, 0.0, 0, 0, _utc_now(), "error"
            )
        else:
            usage = response.usage
            entry = SpendEntry(
                key_id=hold.key.id,
                model=response.model,
                reserved_usd=hold.reserved_usd,
                actual_usd=self._actual_cost(hold, response),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                created_at=_utc_now(),
            )
        used = entry.prompt_tokens + entry.completion_tokens
        reservation = hold.reservation
        if self.admission is not None:
            if hold.tpm_ticket or reservation is not None:
                await self.admission.settle(
                    hold.key.id,
                    tpm_ticket=hold.tpm_ticket,
                    tokens=used,
                    account=None if reservation is None else reservation.account,
                    delta=0
                    if reservation is None
                    else to_nano(entry.actual_usd) - reservation.amount,
                )
            return entry
        await self.budgets.settle(reservation, entry.actual_usd)
        if hold.tpm_ticket:
            await self.limiter.adjust(f"{hold.key.id}:tpm", hold.tpm_ticket, used)
        return entry

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        """Append spend entries to the ledger (a failure is logged, never raised)."""
        if not entries:
            return
        try:
            await self.ledger.record(entries)
        except Exception as exc:
            log.error("spend_ledger_write_failed", error=str(exc), rows=len(entries))
            return
        if self.hooks.on_recorded is not None:
            try:
                self.hooks.on_recorded(entries)
            except Exception as exc:
                log.error("spend_listener_failed", error=str(exc))

    async def aclose(self) -> None:
        for close in self._closers:
            await close()
        self._closers.clear()


def _whole_seconds(seconds: float) -> int:
    """``Retry-After`` in whole seconds, rounded up (retrying earlier would be refused again)."""
    return max(1, math.ceil(seconds))
