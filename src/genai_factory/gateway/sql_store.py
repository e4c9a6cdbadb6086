"""The key store and the spend ledger on SQLAlchemy Core: SQLite embedded, PostgreSQL to scale out.

One schema for both engines (tables ``gateway_keys`` and ``gateway_spend``, created when missing).
``sqlite:///<path>`` runs in WAL mode so the CLI and the service can share the file;
``postgresql://...`` URLs use psycopg 3 (``postgresql+psycopg://``). To keep the tables in their own
PostgreSQL schema, set it on the connection: ``...?options=-csearch_path%3Dgateway``.

SQLAlchemy calls block, so every one runs in a worker thread, never on the event loop. Database
errors become :class:`ServiceNotReady` (503) here, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from genai_factory.exceptions import ConfigurationError, ServiceNotReady
from genai_factory.gateway.keys import ApiKey, utc_now
from genai_factory.gateway.ledger import SpendEntry

T = TypeVar("T")

metadata = sa.MetaData()

keys_table = sa.Table(
    "gateway_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("rpm", sa.Integer, nullable=True),
    sa.Column("tpm", sa.Integer, nullable=True),
    sa.Column("budget_usd", sa.Float, nullable=True),
    sa.Column("budget_period", sa.String(8), nullable=False, default="month"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

spend_table = sa.Table(
    "gateway_spend",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("reserved_usd", sa.Float, nullable=False),
    sa.Column("actual_usd", sa.Float, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_gateway_spend_key_time", "key_id", "created_at"),
)


def normalise_url(url: str) -> str:
    """Send plain ``postgresql://`` (and ``postgres://``) URLs to psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the gateway tables created. Blocking: call it in a thread."""
    url = normalise_url(url)
    try:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                parsed, connect_args={"check_same_thread": False, "timeout": 30}
            )
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
        _create_tables(engine)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot open the gateway database: {exc}") from exc
    return engine


def _create_tables(engine: Engine) -> None:
    try:
        metadata.create_all(engine)
    except SQLAlchemyError:
        # Another process created them at the same moment; the second look finds them.
        metadata.create_all(engine)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise ServiceNotReady(f"the gateway database is unavailable: {type(exc).__name__}") from exc


class _SqlBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def _run(self, work: Callable[[], T]) -> T:
        def guarded() -> T:
            with _translated():
                return work()

        return await asyncio.to_thread(guarded)


def _key_from_row(row: sa.Row[Any]) -> ApiKey:
    return ApiKey.model_validate(row._asdict())


class SqlKeyStore(_SqlBase):
    """API keys in ``gateway_keys`` (only hashes; see :mod:`genai_factory.gateway.keys`)."""

    async def add(self, key: ApiKey) -> None:
        values = key.model_dump() | {"key_hash": key.key_hash}

        def work() -> None:
            with self.engine.begin() as conn:
                conn.execute(keys_table.insert().values(**values))

        await self._run(work)

    async def get(self, key_id: str) -> ApiKey | None:
        def work() -> ApiKey | None:
            with self.engine.connect() as conn:
                row = conn.execute(keys_table.select().where(keys_table.c.id == key_id)).first()
            return _key_from_row(row) if row is not None else None

        return await self._run(work)

    async def list_keys(self, *, include_revoked: bool = False) -> Sequence[ApiKey]:
        query = keys_table.select().order_by(keys_table.c.created_at, keys_table.c.id)
        if not include_revoked:
            query = query.where(keys_table.c.revoked_at.is_(None))

        def work() -> list[ApiKey]:
            with self.engine.connect() as conn:
                return [_key_from_row(row) for row in conn.execute(query)]

        return await self._run(work)

    async def revoke(self, key_id: str) -> bool:
        statement = (
            keys_table.update()
            .where(keys_table.c.id == key_id, keys_table.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )

        def work() -> bool:
            with self.engine.begin() as conn:
                return conn.execute(statement).rowcount == 1

        return await self._run(work)

    async def count_active(self) -> int:
        query = sa.select(sa.func.count()).select_from(keys_table)
        query = query.where(keys_table.c.revoked_at.is_(None))

        def work() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())

        return await self._run(work)


class SqlSpendLedger(_SqlBase):
    """Spend rows in ``gateway_spend``."""

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        if not entries:
            return
        rows = [
            {
                "key_id": e.key_id,
                "trace_id": e.trace_id,
                "model": e.model,
                "reserved_usd": e.reserved_usd,
                "actual_usd": e.actual_usd,
                "prompt_tokens": e.prompt_tokens,
                "completion_tokens": e.completion_tokens,
                "status": e.status,
                "created_at": e.created_at,
            }
            for e in entries
        ]

        def work() -> None:
            with self.engine.begin() as conn:
                conn.execute(spend_table.insert(), rows)

        await self._run(work)

    async def spent(self, key_id: str, since: datetime) -> float:
        query = sa.select(sa.func.coalesce(sa.func.sum(spend_table.c.actual_usd), 0.0)).where(
            spend_table.c.key_id == key_id, spend_table.c.created_at >= since
        )

        def work() -> float:
            with self.engine.connect() as conn:
                return float(conn.execute(query).scalar_one())

        return await self._run(work)

    async def entries(self, key_id: str | None = None, *, limit: int = 100) -> list[SpendEntry]:
        query = spend_table.select().order_by(spend_table.c.id.desc()).limit(limit)
        if key_id is not None:
            query = query.where(spend_table.c.key_id == key_id)

        def work() -> list[SpendEntry]:
            with self.engine.connect() as conn:
                rows = [row._asdict() for row in conn.execute(query)]
            return [SpendEntry(**{k: v for k, v in row.items() if k != "id"}) for row in rows]

        return await self._run(work)


def dispose(engine: Engine) -> None:
    """Close the engine's pooled connections."""
    engine.dispose()
