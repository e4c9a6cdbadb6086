"""Spend is in the ledger before the client sees the bytes that follow it, also in a stream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from genai_factory.gateway.context import current_request
from genai_factory.gateway.ledger import SpendEntry
from genai_factory.gateway.middleware import GatewayMiddleware

EVENTS: list[str] = []


class _Gateway:
    enforcing = False

    async def record(self, entries: Sequence[SpendEntry]) -> None:
        if entries:
            EVENTS.append(f"recorded {len(entries)}")


class _State:
    gateway = _Gateway()


class _App:
    state = _State()


async def _streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})
    context = current_request()
    assert context is not None
    entry = SpendEntry("k1", "fake", 0.1, 0.05, 3, 2, datetime.now(UTC))
    context.charges.append(entry)  # the model call settled, as MeteredModel.stream does
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_a_stream_records_its_charge_before_the_closing_bytes() -> None:
    EVENTS.clear()
    middleware = GatewayMiddleware(_streaming_app, render_error=lambda request, exc: None)  # type: ignore[arg-type,return-value]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [],
        "query_string": b"",
        "app": _App(),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            EVENTS.append(f"sent {message['body']!r}")

    await middleware(scope, receive, send)
    assert EVENTS == [
        "sent b'data: hello\\n\\n'",
        "recorded 1",
        "sent b'data: [DONE]\\n\\n'",
        "sent b''",
    ]
