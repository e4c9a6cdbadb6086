"""``BodyLimitMiddleware``: a request body over its limit gets 413 before it is read whole.

A declared ``Content-Length`` over the limit is refused at once, without reading the body; a body
sent without one (chunked) is counted as it arrives and refused as soon as it passes the limit.
Document uploads (``/v1/documents``) may be as large as ``rag.max_upload_bytes`` plus the
general limit (the multipart framing); everything else has ``service.max_body_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_factory.exceptions import GenAIFactoryError, RequestTooLarge

RenderError = Callable[[Request, GenAIFactoryError], Response]


class _TooLarge(Exception):
    """Raised inside ``receive`` when the body passes its limit."""


@dataclass
class _State:
    received: int = 0
    too_large: bool = False
    started: bool = False
    refused: bool = False


class BodyLimitMiddleware:
    """Refuses bodies over their limit (see the module docstring).

    Args:
        app: the wrapped application.
        limit: the limit in bytes of every path not in ``by_prefix``.
        by_prefix: path prefix → limit in bytes, for routes that take larger bodies.
        render_error: renders the 413 (the service's error shape).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        by_prefix: Mapping[str, int] | None = None,
        render_error: RenderError,
    ) -> None:
        self.app = app
        self.limit = limit
        self.by_prefix = dict(by_prefix or {})
        self.render_error = render_error

    def _limit(self, path: str) -> int:
        return next((v for p, v in self.by_prefix.items() if path.startswith(p)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit)
            return
        state = _State()

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if state.received > limit:
                    state.too_large = True
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            # The framework may turn the failed read into its own error response: once the body
            # is known to be too large, that response is replaced by the 413.
            if not state.too_large:
                state.started = state.started or message["type"] == "http.response.start"
                await send(message)
            elif not state.refused and not state.started:
                state.refused = True
                await self._refuse(scope, receive, send, limit)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if state.started:
                raise
        if state.too_large and not state.refused and not state.started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = RequestTooLarge(f"the request body is larger than the limit of {limit} bytes")
        response = self.render_error(Request(scope), error)
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
