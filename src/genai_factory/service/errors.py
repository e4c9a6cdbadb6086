"""Map the exception tree to HTTP responses, in one place.

Every error body has the same shape: ``{"error": {"code": ..., "message": ..., "trace_id": ...}}``,
plus OpenAI's ``type`` and ``param``, so OpenAI clients read our errors as their own.
Unexpected exceptions become a 500 with a generic message (the details go to the log, not the client).

Gateway refusals: 401 (``unauthenticated``, with ``WWW-Authenticate: Bearer``), 403
(``permission_denied``), 429 (``rate_limit_exceeded``, with ``Retry-After``). An exhausted budget is
402 (``budget_exceeded``), not 429: waiting a few seconds does not help until the period resets.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from genai_factory.exceptions import (
    AuthenticationError,
    BudgetExceeded,
    CircuitOpen,
    ConfigurationError,
    DocumentTooLarge,
    GenAIFactoryError,
    InvalidRequestError,
    NotFoundError,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    RateLimitExceeded,
    RequestTooLarge,
    SafetyViolation,
    ServiceNotReady,
    UnreadableDocument,
    UnsupportedFileType,
)

log = structlog.get_logger(__name__)

#: Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[GenAIFactoryError], int], ...] = (
    (NotFoundError, 404),
    (AuthenticationError, 401),
    (PermissionDenied, 403),
    (RateLimitExceeded, 429),
    (SafetyViolation, 400),
    (DocumentTooLarge, 413),
    (RequestTooLarge, 413),
    (UnsupportedFileType, 415),
    (UnreadableDocument, 422),
    (InvalidRequestError, 400),
    (BudgetExceeded, 402),
    (ServiceNotReady, 503),
    (CircuitOpen, 503),
    (RateLimited, 503),
    (ProviderTimeout, 504),
    (ProviderError, 502),
    (ConfigurationError, 500),
)


#: OpenAI's error ``type`` per code; every other code is an ``invalid_request_error`` when the
#: caller must act (4xx) and a ``server_error`` otherwise.
OPENAI_ERROR_TYPES = {
    "unauthenticated": "authentication_error",
    "permission_denied": "permission_error",
    "rate_limit_exceeded": "rate_limit_error",
    "budget_exceeded": "insufficient_quota",
    "not_found": "invalid_request_error",
    "invalid_request": "invalid_request_error",
    "model_request_rejected": "invalid_request_error",
    "safety_violation": "invalid_request_error",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    type: str = Field(description="OpenAI's error type for this code.")
    param: str | None = None
    trace_id: str
    reason: str | None = Field(default=None, description="A guard's reason (safety_violation).")


class ErrorBody(BaseModel):
    """The body of every error response (and of the last event of a stream that fails)."""

    error: ErrorDetail


_ERROR_MEANINGS = {
    400: "The request cannot be served as sent (a guard's block, a bad option).",
    401: "No API key, or an unknown or revoked one.",
    402: "The key's budget cannot cover the call.",
    403: "The key may not do this.",
    404: "The thing named does not exist.",
    413: "The body (or the uploaded document) is over its size limit.",
    415: "The uploaded file's type is not supported.",
    429: "The key used up its requests or tokens per minute (see Retry-After).",
    500: "The service is misconfigured or failed; see its log with the trace id.",
    502: "The model backend failed.",
    503: "Starting up, or every backend is failing fast (see Retry-After).",
    504: "The model backend did not answer in time.",
}
#: The error responses every route may give, for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in _ERROR_MEANINGS.items()
}


def status_for(exc: GenAIFactoryError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


def error_body(
    code: str, message: str, trace_id: str, status: int = 500, **extra: object
) -> dict[str, object]:
    """The error body (also sent as the last event of a stream that fails)."""
    kind = OPENAI_ERROR_TYPES.get(code) or (
        "invalid_request_error" if 400 <= status < 500 else "server_error"
    )
    fields = {"code": code, "message": message, "type": kind, "param": None, "trace_id": trace_id}
    return {"error": {**fields, **extra}}


def _trace_id(request: Request) -> str:
    return getattr(request.state, "trace_id", None) or uuid.uuid4().hex


def error_response(request: Request, exc: GenAIFactoryError) -> JSONResponse:
    """The JSON error response for ``exc`` (also used by middleware, outside the handlers)."""
    status = status_for(exc)
    trace_id = _trace_id(request)
    extra: dict[str, object] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, SafetyViolation):
        extra["reason"] = exc.reason
    retry_after = getattr(exc, "retry_after", None)
    if status in (429, 503) and retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.error("request_failed", code=exc.code, error=exc.message, trace_id=trace_id)
    message = exc.message if status != 500 else "the service is misconfigured; see its log"
    return JSONResponse(
        error_body(exc.code, message, trace_id, status, **extra),
        status_code=status,
        headers=headers,
    )


async def _factory_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GenAIFactoryError)
    return error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
    return JSONResponse(
        error_body("invalid_request", summary, _trace_id(request), 422, details=details),
        status_code=422,
    )


#: The error code of a refusal made by the framework itself (unparseable body, unknown route, ...).
_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (a body that cannot be parsed, an unknown route or method) in the
    service's error shape, not the framework's ``{"detail": ...}``."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error"
    )
    return JSONResponse(
        error_body(code, str(exc.detail), _trace_id(request), exc.status_code),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    trace_id = _trace_id(request)
    log.exception("unhandled_error", trace_id=trace_id, error_type=type(exc).__name__)
    return JSONResponse(
        error_body("internal_error", "internal error; see the service log", trace_id),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GenAIFactoryError, _factory_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
