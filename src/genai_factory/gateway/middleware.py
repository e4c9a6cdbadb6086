"""``GatewayMiddleware``: the key check and the requests-per-minute limit in front of every route.

Pure ASGI, so it covers every route, present and future (``/docs`` too), except the probes in
:data:`OPEN_PATHS`. It reads the gateway from ``app.state.gateway`` (set by the lifespan), opens the
request's :class:`~genai_factory.gateway.context.RequestContext` (on :data:`DEFERRED_RPM_PATHS`,
with a Redis gateway, the request counts with its first model call, or else before its response
starts: see :mod:`~genai_factory.gateway.service`), and writes the request's spend
entries to the ledger just before the response starts and, in a stream, before the first bytes
sent after a model call settled, so a client that got its answer finds it in the ledger. Refusals are rendered by ``render_error`` (the
service's error handler), because exceptions raised here never reach the route exception handlers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_factory.exceptions import GenAIFactoryError
from genai_factory.gateway.context import RequestContext, enter_request, leave_request
from genai_factory.gateway.service import GatewayService

#: Paths served without a key: liveness, readiness and metrics scraping.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Paths whose requests-per-minute entry waits for the request's first model call when the gateway
#: takes both in one step (:attr:`GatewayService.defers_rpm`): a plain chat completion reads and
#: checks its body, then calls the model. (The route takes the entry at once for a ``mode``, which
#: may retrieve before calling the model.)
DEFERRED_RPM_PATHS = frozenset({"/v1/chat/completions"})
#: The web UI's pages and static assets: they hold no data (the pages call the API with a key).
UI_PATH, UI_PREFIX = "/ui", "/ui/"

ErrorRenderer = Callable[[Request, GenAIFactoryError], Response]


def presented_key(headers: Headers) -> str | None:
    """The key in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, if any."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == UI_PATH or path.startswith(UI_PREFIX)


class GatewayMiddleware:
    """Authenticate, count the request, and keep the spend of what follows (see the module)."""

    def __init__(self, app: ASGIApp, *, render_error: ErrorRenderer) -> None:
        self.app = app
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        gateway: GatewayService | None = getattr(request.app.state, "gateway", None)
        trace_id = getattr(request.state, "trace_id", None) or uuid.uuid4().hex
        request.state.trace_id = trace_id
        context = RequestContext(trace_id=trace_id)
        if gateway is None:
            await self.app(scope, receive, send)
            return
        if gateway.enforcing and not _is_open(scope["path"]):
            try:
                context.key = await gateway.authenticate(presented_key(request.headers))
                if gateway.defers_rpm and scope["path"] in DEFERRED_RPM_PATHS:
                    context.rpm_pending = context.key.rpm is not None
                else:
                    await gateway.admit_request(context.key)
            except GenAIFactoryError as exc:
                await self.render_error(request, exc)(scope, receive, send)
                return
        replaced = False

        async def send_after_recording(message: Message) -> None:
            nonlocal replaced
            if replaced:  # the route's answer gave way to the refusal of its pending rpm
                return
            if message["type"] == "http.response.start" and context.rpm_pending:
                # No model call took the request's requests per minute: it counts now, and its
                # refusal is the answer.
                try:
                    await gateway.admit_pending(context)
                except GenAIFactoryError as exc:
                    replaced = True
                    await gateway.record(context.take_charges())
                    await self.render_error(request, exc)(scope, receive, send)
                    return
            # Charges settled so far are in the ledger before the client sees the bytes that
            # follow them: the head of a whole response, and, in a stream, the chunk after the
            # model call ended (its closing chunk and [DONE]), so "answered" implies "recorded".
            if message["type"] == "http.response.start" or context.charges:
                await gateway.record(context.take_charges())
            await send(message)

        token = enter_request(context)
        try:
            await self.app(scope, receive, send_after_recording)
        finally:
            leave_request(token)
            await gateway.record(context.take_charges())
            if context.rpm_pending:  # no response started (the route failed): it still counts
                with contextlib.suppress(GenAIFactoryError):
                    await gateway.admit_pending(context)
