"""The gateway's view of the request being served: which key, which trace id, what it spent.

The middleware opens a :class:`RequestContext` for every HTTP request; the metered model reads it
to know whose limits and budget a model call counts against, and appends one spend entry per call;
the middleware writes those entries to the ledger before the response starts. Code outside a
request (the CLI, jobs) has no context, and its model calls are not metered.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace

from genai_factory.gateway.keys import ApiKey
from genai_factory.gateway.ledger import SpendEntry


@dataclass
class RequestContext:
    """One request: its key (``None`` when auth is off), its trace id and its unwritten spend.

    ``rpm_pending``: the request's requests-per-minute entry is still to be taken, by its first
    model call or else before its response starts.
    """

    trace_id: str
    key: ApiKey | None = None
    charges: list[SpendEntry] = field(default_factory=list)
    rpm_pending: bool = False

    def take_charges(self) -> list[SpendEntry]:
        """The spend entries not yet written, stamped with the trace id; empties the list."""
        taken = [_with_trace(entry, self.trace_id) for entry in self.charges]
        self.charges.clear()
        return taken


def _with_trace(entry: SpendEntry, trace_id: str) -> SpendEntry:
    return replace(entry, trace_id=entry.trace_id or trace_id)


_current: ContextVar[RequestContext | None] = ContextVar("genai_gateway_request", default=None)


def current_request() -> RequestContext | None:
    """The gateway context of the request being served, if any."""
    return _current.get()


def enter_request(context: RequestContext) -> Token[RequestContext | None]:
    """Make ``context`` current; returns the token for :func:`leave_request`."""
    return _current.set(context)


def leave_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def bind_trace_id(trace_id: str) -> None:
    """Record the answer's trace id, so the ledger rows of this request carry the same id."""
    context = _current.get()
    if context is not None:
        context.trace_id = trace_id
