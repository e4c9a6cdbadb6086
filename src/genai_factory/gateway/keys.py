"""API keys: what they look like, how they are made and checked, and the store that holds them.

A key reads ``gf_<id>_<secret>``. ``id`` is 12 hex characters that name the key in logs, the spend
ledger and the CLI (it is public); ``secret`` is 32 random bytes, URL-safe base64. The plaintext is
shown once, when the key is created, and never stored: the store keeps the SHA-256 of the whole key.
A fast hash is enough because the secret has 256 bits of entropy (there is no dictionary to guess
from, unlike a password), and the stored hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from genai_factory.messages import UtcDatetime

KEY_PREFIX = "gf_"
ID_HEX_CHARS = 12
SECRET_BYTES = 32

BudgetPeriod = Literal["day", "month"]

_KEY_SHAPE = re.compile(r"gf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")


class KeyInfo(BaseModel):
    """What may be shown of a key: everything but its hash (and never the plaintext)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    admin: bool = False
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = "month"
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKey(KeyInfo):
    """One stored key: its limits, its budget, whether it is revoked, and the hash it is checked by."""

    key_hash: str = Field(exclude=True, repr=False)

    def info(self) -> KeyInfo:
        """The key without its hash."""
        return KeyInfo.model_validate(self.model_dump())


class KeyStore(Protocol):
    """Where keys live. Implementations: :class:`~genai_factory.gateway.sql_store.SqlKeyStore`.

    Contract: ``get`` returns revoked keys too (the caller decides); ``revoke`` returns ``False``
    for an unknown or already revoked id; nothing ever stores or returns a plaintext key.
    """

    async def add(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def list_keys(self, *, include_revoked: bool = False) -> Sequence[ApiKey]: ...

    async def revoke(self, key_id: str) -> bool: ...

    async def count_active(self) -> int: ...


def utc_now() -> datetime:
    """Now, in UTC, without tzinfo: the form every gateway timestamp is stored in."""
    return datetime.now(UTC).replace(tzinfo=None)


def hash_key(plaintext: str) -> str:
    """The stored form of a key: the hex SHA-256 of the whole key."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new ``(key id, plaintext key)``."""
    key_id = secrets.token_hex(ID_HEX_CHARS // 2)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def key_id_of(plaintext: str) -> str | None:
    """The id inside a well-formed key, or ``None`` when the text is not shaped like a key."""
    match = _KEY_SHAPE.match(plaintext)
    return match.group(1) if match else None


def matches(plaintext: str, key_hash: str) -> bool:
    """Whether ``plaintext`` is the key stored as ``key_hash`` (constant-time comparison)."""
    return hmac.compare_digest(hash_key(plaintext), key_hash)


def new_key(
    name: str,
    *,
    admin: bool = False,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: BudgetPeriod = "month",
) -> tuple[ApiKey, str]:
    """A new key record and its plaintext (to be shown once, never stored)."""
    key_id, plaintext = generate_key()
    record = ApiKey(
        id=key_id,
        name=name,
        key_hash=hash_key(plaintext),
        admin=admin,
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        budget_period=budget_period,
        created_at=utc_now(),
    )
    return record, plaintext
