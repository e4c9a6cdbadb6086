"""The interaction log on SQLAlchemy Core: SQLite (WAL) embedded, PostgreSQL to scale out.

Tables ``interactions`` (one row per request; see
:class:`~genai_factory.observability.interactions.InteractionRecord`) and ``interaction_feedback``
(one row per rating), created when missing, in the database of ``observability.database_url`` or,
by default, the gateway's (``<data_dir>/gateway.db``). Engines are opened like the gateway's (WAL
and a busy timeout on SQLite, psycopg 3 on PostgreSQL); a table made by an older release gets the
columns and indexes added since (:data:`ADDED_COLUMNS`). Every call runs in a worker thread;
database errors become :class:`ServiceNotReady` here, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from genai_factory.exceptions import ConfigurationError, ServiceNotReady
from genai_factory.gateway.sql_store import open_engine
from genai_factory.observability.interactions import (
    FeedbackRecord,
    InteractionRecord,
    erased_details,
    utc_now,
)

T = TypeVar("T")

metadata = sa.MetaData()
_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")

interactions_table = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", _id, primary_key=True),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("session_id", sa.String(128), nullable=True),
    sa.Column("mode", sa.String(16), nullable=True),
    sa.Column("route", sa.String(16), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("finish_reason", sa.String(16), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("request_text", sa.Text, nullable=False),
    sa.Column("response_text", sa.Text, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("stages_ms", sa.JSON, nullable=False),
    sa.Column("retrieval_ids", sa.JSON, nullable=False),
    sa.Column("safety", sa.JSON, nullable=True),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
    sa.Index("ix_interactions_trace", "trace_id"),
    sa.Index("ix_interactions_time", "created_at"),
    sa.Index("ix_interactions_key_time", "key_id", "created_at"),
    sa.Index("ix_interactions_session", "session_id"),
)
#: Columns of ``interactions`` added after its first release (added to older tables when opened).
ADDED_COLUMNS = ("deleted_at",)

feedback_table = sa.Table(
    "interaction_feedback",
    metadata,
    sa.Column("id", _id, primary_key=True),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_interaction_feedback_trace", "trace_id"),
)


def open_interaction_engine(url: str) -> Engine:
    """An engine for ``url`` with the interaction tables created. Blocking: call it in a thread.

    Raises:
        ConfigurationError: the database cannot be opened.
    """
    engine = open_engine(url)
    try:
        try:
            metadata.create_all(engine)
            _upgrade(engine)
        except SQLAlchemyError:  # another process created or upgraded them at the same moment
            metadata.create_all(engine)
            _upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigurationError(f"cannot create the interaction log tables: {exc}") from exc
    return engine


def _upgrade(engine: Engine) -> None:
    """Add the columns and indexes an older ``interactions`` table lacks (idempotent)."""
    present = {column["name"] for column in sa.inspect(engine).get_columns("interactions")}
    for name in ADDED_COLUMNS:
        if name not in present:
            column = interactions_table.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE interactions ADD COLUMN {name} {kind}"))
    for index in interactions_table.indexes:
        index.create(engine, checkfirst=True)


def _record_of(row: sa.Row[Any]) -> InteractionRecord:
    values = row._asdict()
    values.pop("id", None)
    return InteractionRecord(**values)


def storable(value: Any) -> Any:
    """``value`` with NUL characters replaced (U+FFFD), in strings nested at any depth: PostgreSQL
    refuses them in text and JSON, and one such request must not fail a whole batch."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {key: storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


class SqlInteractionLog:
    """Interaction records and feedback in SQL (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def _run(self, work: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return work()
            except SQLAlchemyError as exc:
                raise ServiceNotReady(
                    f"the interaction log is unavailable: {type(exc).__name__}"
                ) from exc

        return await asyncio.to_thread(guarded)

    async def record(self, records: Sequence[InteractionRecord]) -> None:
        """Append records atomically (all or none)."""
        if not records:
            return
        rows = [storable(record.as_row()) for record in records]

        def work() -> None:
            with self.engine.begin() as conn:
                conn.execute(interactions_table.insert(), rows)

        await self._run(work)

    async def get(self, trace_id: str) -> InteractionRecord | None:
        """The (first) record of ``trace_id``."""
        query = (
            interactions_table.select()
            .where(interactions_table.c.trace_id == trace_id)
            .order_by(interactions_table.c.id)
            .limit(1)
        )

        def work() -> InteractionRecord | None:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
            return _record_of(row) if row is not None else None

        return await self._run(work)

    async def recent(
        self, *, since: datetime | None = None, limit: int = 1000
    ) -> list[InteractionRecord]:
        """Records created at or after ``since``, oldest first (for the drift monitor)."""
        query = interactions_table.select().order_by(interactions_table.c.id).limit(limit)
        if since is not None:
            query = query.where(interactions_table.c.created_at >= since)

        def work() -> list[InteractionRecord]:
            with self.engine.connect() as conn:
                return [_record_of(row) for row in conn.execute(query)]

        return await self._run(work)

    async def erase_session(self, session_id: str) -> int:
        """Erase the records of ``session_id`` not erased yet (texts blanked, ``details`` without
        text, ``deleted_at`` set; counts and costs kept) and the comments of their feedback, in one
        transaction. Returns how many records were erased."""
        table = interactions_table
        found = sa.select(table.c.id, table.c.details).where(
            table.c.session_id == session_id, table.c.deleted_at.is_(None)
        )
        erase = (
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(
                request_text="",
                response_text="",
                details=sa.bindparam("kept"),
                deleted_at=sa.bindparam("when"),
            )
        )
        traces = sa.select(table.c.trace_id).where(table.c.session_id == session_id)
        comments = (
            feedback_table.update()
            .where(feedback_table.c.trace_id.in_(traces), feedback_table.c.comment.is_not(None))
            .values(comment=None)
        )

        def work() -> int:
            when = utc_now()
            with self.engine.begin() as conn:
                rows = conn.execute(found).all()
                if rows:
                    params = [
                        {"row_id": row.id, "kept": erased_details(row.details or {}), "when": when}
                        for row in rows
                    ]
                    conn.execute(erase, params)
                conn.execute(comments)
            return len(rows)

        return await self._run(work)

    async def add_feedback(self, feedback: FeedbackRecord) -> int:
        """Store one rating; returns its id."""
        values = {
            "trace_id": feedback.trace_id,
            "key_id": feedback.key_id,
            "rating": feedback.rating,
            "comment": feedback.comment,
            "created_at": feedback.created_at,
        }

        def work() -> int:
            with self.engine.begin() as conn:
                inserted = conn.execute(feedback_table.insert().values(**values))
                key = inserted.inserted_primary_key
                assert key is not None
                return int(key[0])

        return await self._run(work)

    async def feedback(self, trace_id: str) -> list[FeedbackRecord]:
        query = (
            feedback_table.select()
            .where(feedback_table.c.trace_id == trace_id)
            .order_by(feedback_table.c.id)
        )

        def work() -> list[FeedbackRecord]:
            with self.engine.connect() as conn:
                rows = [row._asdict() for row in conn.execute(query)]
            return [FeedbackRecord(**{k: v for k, v in r.items() if k != "id"}) for r in rows]

        return await self._run(work)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
