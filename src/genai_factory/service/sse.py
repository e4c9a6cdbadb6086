"""Server-sent events: the wire format, the response, and starting a stream before answering.

A stream answers ``200`` once its headers are sent, so everything that can be refused (rate limit,
budget, a failing backend) must be tried *before*: :func:`primed` takes the first item of an event
source now, in the route, where an exception still becomes a normal HTTP error, and returns a
source that yields that item and the rest. An error after the headers is sent as the stream's last
event, in the same body shape as an HTTP error.

:func:`observed_sse` is the one loop that turns a turn's events into a route's wire format and
reports the outcome exactly once: the answer (before the closing events are sent, so a client that
reads the interaction log or the ledger right after the stream finds the rows), an error, or the
client leaving (``cancelled``). When the interaction log is durable, the closing events (or the
error event) are sent only once the outcome's record is committed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import structlog
from fastapi.responses import StreamingResponse

from genai_factory.assistant.answer import StreamEnd, StreamEvent
from genai_factory.exceptions import GenAIFactoryError
from genai_factory.observability.assembly import Report
from genai_factory.service.errors import error_body, status_for

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: No caching, and no buffering by proxies such as nginx, so events arrive as they are written.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(data: str, event: str | None = None) -> bytes:
    """One event: an optional ``event:`` line, ``data:`` lines, and the blank line that ends it."""
    lines = [f"event: {event}"] if event else []
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


async def primed(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """Take ``source``'s first item now (its errors raise here); then yield it and the rest."""
    try:
        first = await anext(source)
    except StopAsyncIteration:
        return _rest(source)
    return _rest(source, (first,))


async def _rest(source: AsyncIterator[T], taken: tuple[T, ...] = ()) -> AsyncIterator[T]:
    try:
        for item in taken:
            yield item
        async for item in source:
            yield item
    finally:
        closer = getattr(source, "aclose", None)
        if closer is not None:
            await closer()


def stream_error(exc: BaseException, trace_id: str) -> str:
    """The JSON of the error event that ends a failed stream (as :func:`error_response` would)."""
    if isinstance(exc, GenAIFactoryError):
        status = status_for(exc)
        if status >= 500:
            log.error("stream_failed", code=exc.code, error=exc.message, trace_id=trace_id)
        message = exc.message if status != 500 else "the service is misconfigured; see its log"
        return json.dumps(error_body(exc.code, message, trace_id, status))
    log.error("stream_failed", error_type=type(exc).__name__, trace_id=trace_id, exc_info=exc)
    return json.dumps(error_body("internal_error", "internal error; see the service log", trace_id))


#: How a route writes one event of a turn on the wire (zero or more SSE events).
Render = Callable[[StreamEvent], Iterable[bytes]]


async def observed_sse(
    events: AsyncIterator[StreamEvent],
    render: Render,
    report: Report,
    *,
    error_event: str | None = None,
) -> AsyncIterator[bytes]:
    """``events`` rendered by ``render``, with the outcome reported once (see the module doc)."""
    try:
        async for event in events:
            if isinstance(event, StreamEnd):
                report.answered(event.answer)
                await report.recorded()
            for data in render(event):
                yield data
    except Exception as exc:
        report.failed(exc)
        await report.recorded()
        yield sse_event(stream_error(exc, report.trace_id), error_event)
    finally:
        report.failed(GeneratorExit())  # the client left (ignored once the outcome is reported)
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
