"""``GET`` and ``DELETE /v1/sessions/{session_id}``: read or forget a conversation.

A session belongs to the API key that created it: another key gets 403 (with auth off, any caller
may read or delete any session).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import NotFoundError
from genai_factory.memory.protocol import SessionInfo, SessionStore, check_owner
from genai_factory.messages import Message, UtcDatetime
from genai_factory.observability.assembly import request_key_id
from genai_factory.service.deps import components

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


class SessionMessage(BaseModel):
    role: str
    content: str


class SessionView(BaseModel):
    session_id: str
    updated_at: UtcDatetime | None = None
    messages: list[SessionMessage]


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
    """The messages the session keeps, oldest first. 404 unknown, 403 another key's."""
    store, found = await _owned(parts, session_id)
    messages = await store.messages(session_id)
    return SessionView(
        session_id=session_id, updated_at=found.updated_at, messages=[_view(m) for m in messages]
    )


@router.delete("/{session_id}")
async def delete_session(
    session_id: str, parts: Annotated[Components, Depends(components)]
) -> dict[str, str]:
    """Forget the session. 404 unknown, 403 another key's."""
    store, _ = await _owned(parts, session_id)
    await store.delete(session_id)
    return {"deleted": session_id}
