"""``GatewayService``: authenticate keys, apply their limits and budgets, keep the spend ledger.

Per HTTP request: :meth:`authenticate` the presented key, then :meth:`admit_request` (requests per
minute). Per model call, made by :class:`~genai_factory.gateway.metered.MeteredModel`:
:meth:`reserve_call` (tokens per minute and the worst-case cost, both for the call's real prompt
and its ``max_tokens``) before, :meth:`settle_call` (the real tokens and cost) after. The spend
entries are written by :meth:`record`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from genai_factory.exceptions import (
    AuthenticationError,
    BudgetExceeded,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceeded,
)
from genai_factory.gateway.budgets import Budgets, Reservation
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
            self._refused("rpm")
            wait = _whole_seconds(admission.retry_after_s)
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
        if math.isinf(admission.retry_after_s):
            self._refused("tpm_exceeds_limit")
            raise InvalidRequestError(
                f"this request may use up to {tokens} tokens (prompt and max_tokens), more than "
                f"key {key.id}'s limit of {key.tpm} tokens per minute; lower max_tokens or "
                "shorten the query"
            )
        self._refused("tpm")
        wait = _whole_seconds(admission.retry_after_s)
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
        self, key: ApiKey, messages: Sequence[Message], max_tokens: int
    ) -> CallHold:
        """Take the call's worst-case tokens (per minute) and cost (budget) before it is made.

        Raises:
            RateLimitExceeded: the tokens do not fit in the key's tokens per minute yet.
            InvalidRequestError: the tokens can never fit in the key's tokens per minute.
            BudgetExceeded: the worst-case cost does not fit in what is left of the budget.
            ConfigurationError: the key has a budget and a model of the chain has no price.
        """
        prompt_tokens = estimate_prompt_tokens(messages)
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
        await self.budgets.settle(hold.reservation, entry.actual_usd)
        if hold.tpm_ticket:
            used = entry.prompt_tokens + entry.completion_tokens
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
