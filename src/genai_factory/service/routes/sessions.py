"""``GET`` and ``DELETE /v1/sessions/{session_id}``: read or forget a conversation.

A session belongs to the API key that created it: another key gets 403 (with auth off, any caller
may read or delete any session). Deleting removes the session's messages and summary from the
session store and erases its records in the interaction log (texts blanked, marked deleted, counts
and costs kept); the log is erased first, so a failure there (503) leaves the session to delete again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import NotFoundError
from genai_factory.memory.protocol import SessionInfo, SessionStore, check_owner
from genai_factory.messages import Message, UtcDatetime
from genai_factory.observability.assembly import Telemetry, request_key_id
from genai_factory.service.deps import components, telemetry

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


class SessionMessage(BaseModel):
    role: str
    content: str


class SessionView(BaseModel):
    session_id: str
    updated_at: UtcDatetime | None = None
    #: The model's summary of the turns that left the prompt's window (``None``: none yet).
    summary: str | None = None
    #: How many of the session's first messages the summary covers.
    summary_covers: int = 0
    messages: list[SessionMessage]


class SessionDeleted(BaseModel):
    deleted: str
    #: Records of the session erased in the interaction log by this call.
    interactions_erased: int


async def _owned(parts: Components, session_id: str) -> tuple[SessionStore, SessionInfo]:
    store = parts.assistant.history
    found = await store.info(session_id) if store is not None else None
    if store is None or found is None:
        raise NotFoundError(f"no session {session_id!r}")
    check_owner(found, request_key_id())
    return store, found


def _view(message: Message) -> SessionMessage:
    return SessionMessage(role=message.role, content=message.content)


@router.get("/{session_id}")
async def get_session(
    session_id: str, parts: Annotated[Components, Depends(components)]
) -> SessionView:
    """The messages the session keeps (oldest first) and its summary. 404 unknown, 403 another
    key's."""
    store, found = await _owned(parts, session_id)
    history = await store.history(session_id)
    if history is None:  # expired or deleted since
        raise NotFoundError(f"no session {session_id!r}")
    summary = history.summary
    return SessionView(
        session_id=session_id,
        updated_at=found.updated_at,
        summary=summary.text if summary is not None else None,
        summary_covers=summary.through if summary is not None else 0,
        messages=[_view(m) for m in history.messages],
    )


@router.delete("/{session_id}")
async def delete_session(
    session_id: str,
    parts: Annotated[Components, Depends(components)],
    observed: Annotated[Telemetry, Depends(telemetry)],
) -> SessionDeleted:
    """Forget the session and erase it from the interaction log. 404 unknown, 403 another key's,
    503 when the interaction log is unavailable (nothing deleted yet then)."""
    store, _ = await _owned(parts, session_id)
    erased = await observed.interactions.erase_session(session_id)
    await store.delete(session_id)
    return SessionDeleted(deleted=session_id, interactions_erased=erased)
