"""Admin endpoints: manage keys and read the spend ledger over HTTP, with an admin key.

``GET /v1/admin/keys``, ``POST /v1/admin/keys`` (answers the new key once), ``DELETE
/v1/admin/keys/{key_id}`` and ``GET /v1/admin/spend``. They always need an admin key, even when auth
is off for the other endpoints: 401 without a valid key, 403 with a key that is not an admin's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genai_factory.exceptions import PermissionDenied, ServiceNotReady
from genai_factory.gateway.context import current_request
from genai_factory.gateway.keys import ApiKey, BudgetPeriod, KeyInfo
from genai_factory.gateway.middleware import presented_key
from genai_factory.gateway.service import GatewayService
from genai_factory.messages import UtcDatetime

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def gateway(request: Request) -> GatewayService:
    found: GatewayService | None = getattr(request.app.state, "gateway", None)
    if found is None:
        raise ServiceNotReady("the gateway is starting")
    return found


async def admin_key(
    request: Request, service: Annotated[GatewayService, Depends(gateway)]
) -> ApiKey:
    """The request's admin key (authenticated here when auth is off for other endpoints)."""
    context = current_request()
    key = context.key if context is not None else None
    if key is None:
        key = await service.authenticate(presented_key(request.headers))
    if not key.admin:
        raise PermissionDenied(f"key {key.id} is not an admin key; admin endpoints need one")
    return key


#: The largest requests or tokens per minute a key may be given (fits every database's integer).
MAX_LIMIT = 2**31 - 1
#: The largest budget a key may be given, in USD.
MAX_BUDGET_USD = 1e12


class NewKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT, strict=True)
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT, strict=True)
    budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    budget_period: BudgetPeriod = "month"

    @field_validator("budget_usd", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("budget_usd must be a number, not a boolean")
        return value


class NewKey(BaseModel):
    """The created key: ``key`` is the plaintext, shown this once."""

    key: str
    record: KeyInfo


class SpendRow(BaseModel):
    key_id: str
    trace_id: str
    model: str
    reserved_usd: float
    actual_usd: float
    prompt_tokens: int
    completion_tokens: int
    status: str
    created_at: UtcDatetime


Admin = Annotated[ApiKey, Depends(admin_key)]
Gateway = Annotated[GatewayService, Depends(gateway)]


@router.get("/keys")
async def list_keys(_: Admin, service: Gateway, include_revoked: bool = False) -> list[KeyInfo]:
    """Every active key (with ``include_revoked``, the revoked ones too); never a hash."""
    return [key.info() for key in await service.keys.list_keys(include_revoked=include_revoked)]


@router.post("/keys", status_code=201)
async def create_key(body: NewKeyRequest, _: Admin, service: Gateway) -> NewKey:
    """Create a key; the answer holds its plaintext, which is not stored and not shown again."""
    record, plaintext = await service.create_key(
        body.name,
        admin=body.admin,
        rpm=body.rpm,
        tpm=body.tpm,
        budget_usd=body.budget_usd,
        budget_period=body.budget_period,
    )
    return NewKey(key=plaintext, record=record.info())


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, _: Admin, service: Gateway) -> dict[str, str]:
    """Revoke a key; 404 when no active key has this id."""
    await service.revoke_key(key_id)
    return {"revoked": key_id}


@router.get("/spend")
async def spend(
    _: Admin,
    service: Gateway,
    key_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SpendRow]:
    """The latest ledger rows, newest first, optionally for one key."""
    rows = await service.ledger.entries(key_id, limit=limit)
    return [SpendRow(**row.__dict__) for row in rows]
