"""Build the gateway from settings, and decide whether auth is on.

Auth (``auth.enabled``):

* ``true``: every endpoint but ``/healthz``, ``/readyz`` and ``/metrics`` needs a key.
* ``false``: no key needed, no limits, no budgets. Allowed only when the service binds to a
  loopback address (127.0.0.0/8, ``::1``, ``localhost``); anywhere else the service refuses to start.
* ``"auto"`` (the default): on, except when the service binds to a loopback address and the key
  store holds no active key: then off, with a warning at start-up. So ``genai-factory serve`` on
  127.0.0.1 answers a plain ``curl`` on a fresh checkout, and the first ``keys create`` (then a
  restart) turns auth on. The decision is taken once, at start-up.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from genai_factory.config import Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.gateway.admission import KeyAdmission
from genai_factory.gateway.budgets import BudgetCounter, Budgets, InProcessBudgetCounter
from genai_factory.gateway.group_commit import GroupCommitLedger
from genai_factory.gateway.keys import KeyStore
from genai_factory.gateway.ledger import SpendLedger
from genai_factory.gateway.pricing import PriceBook
from genai_factory.gateway.ratelimit import InProcessRateLimiter, RateLimiter
from genai_factory.gateway.service import GatewayHooks, GatewayService
from genai_factory.gateway.sql_store import SqlKeyStore, SqlSpendLedger, open_engine

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the service on this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_auth_binding(settings: Settings) -> None:
    """Refuse ``auth.enabled=false`` on an address other machines can reach.

    Raises:
        ConfigurationError: auth is off and the service binds to a non-loopback address.
    """
    host = settings.service.host
    if settings.auth.enabled is False and not is_loopback(host):
        raise ConfigurationError(
            f"auth.enabled=false is allowed only on a loopback address, but the service binds to "
            f"{host}: create a key with `genai-factory keys create --name NAME` and leave auth on "
            "(GENAI_AUTH__ENABLED=auto or true), or bind to 127.0.0.1"
        )


async def decide_enforcing(settings: Settings, keys: KeyStore) -> bool:
    """Whether requests need a key (see the module docstring); logs the decision when it is off."""
    check_auth_binding(settings)
    host = settings.service.host
    enabled = settings.auth.enabled
    if enabled == "auto":
        enabled = not is_loopback(host) or await keys.count_active() > 0
    if not enabled:
        log.warning(
            "auth_disabled",
            host=host,
            detail="API keys are OFF: anyone who can reach this loopback address may call every "
            "endpoint, without limits or budgets. Create a key with `genai-factory keys create` "
            "and restart to turn auth on.",
        )
    elif await keys.count_active() == 0:
        log.warning("auth_enabled_without_keys", host=host, detail="every request will get 401")
    return enabled


@dataclass(frozen=True)
class _Backends:
    limiter: RateLimiter
    counter: BudgetCounter
    admission: KeyAdmission | None
    closers: list[Callable[[], Awaitable[None]]]


async def _backends(settings: Settings) -> _Backends:
    url = settings.gateway.redis_url
    if url is None:
        return _Backends(InProcessRateLimiter(), InProcessBudgetCounter(), None, [])
    from genai_factory.gateway.redis_backends import (
        RedisAdmission,
        RedisBudgetCounter,
        RedisRateLimiter,
        open_redis,
    )

    client = await open_redis(url)
    prefix = settings.gateway.redis_prefix
    return _Backends(
        RedisRateLimiter(client, prefix=prefix),
        RedisBudgetCounter(client, prefix=prefix),
        RedisAdmission(client, prefix=prefix),  # the same keys as the two above
        [client.aclose],
    )


#: Makes the gateway's observers once its key store and ledger are open (the cost monitor reads
#: both): the telemetry's :meth:`~genai_factory.observability.assembly.Telemetry.gateway_hooks`.
HooksFactory = Callable[[KeyStore, SpendLedger], GatewayHooks]


async def open_gateway(settings: Settings, *, hooks: HooksFactory | None = None) -> GatewayService:
    """Open the key store, ledger and limit backends named by ``settings``; close with ``aclose``.

    Raises:
        ConfigurationError: a backend cannot be opened, or auth is off on a public address.
    """
    check_auth_binding(settings)
    engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())

    async def dispose() -> None:
        await asyncio.to_thread(engine.dispose)

    try:
        backends = await _backends(settings)
    except BaseException:
        await dispose()
        raise
    keys, ledger = SqlKeyStore(engine), GroupCommitLedger(SqlSpendLedger(engine))
    prices = PriceBook.from_settings(settings.llm)
    try:
        enforcing = await decide_enforcing(settings, keys)
    except BaseException:
        for close in [*backends.closers, dispose]:
            await close()
        raise
    if enforcing and prices.unpriced():
        log.warning(
            "unpriced_models",
            models=prices.unpriced(),
            detail="keys with a budget are refused while these models have no price",
        )
    return GatewayService(
        keys=keys,
        ledger=ledger,
        limiter=backends.limiter,
        budgets=Budgets(backends.counter, ledger),
        prices=prices,
        enforcing=enforcing,
        key_cache_s=settings.auth.key_cache_s,
        closers=[ledger.flush, *backends.closers, dispose],
        hooks=hooks(keys, ledger) if hooks is not None else None,
        admission=backends.admission,
    )
