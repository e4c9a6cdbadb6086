"""The one exception hierarchy of GenAI Factory.

Every error the package raises on purpose derives from :class:`GenAIFactoryError`. Subclasses are
named after who has to act: the operator (configuration), the caller (a bad request), or nobody in
particular because an upstream provider failed (and retry / fallback may help).

::

    GenAIFactoryError
    ├── ConfigurationError            operator: settings, files or models are wrong or missing
    ├── InvalidRequestError           caller: the request cannot be served as sent (4xx)
    │   ├── NotFoundError             caller: the thing named does not exist
    │   ├── ModelRequestRejected      caller: a provider refused the request itself (400, 404, 422)
    │   ├── AuthenticationError       caller: no API key, or an unknown or revoked one (401)
    │   ├── PermissionDenied          caller: the key may not do this (403)
    │   ├── RateLimitExceeded         caller: the key used up its requests or tokens per minute (429)
    │   ├── DocumentTooLarge          caller: an uploaded document is over the size limit (413)
    │   ├── RequestTooLarge           caller: a request body is over the size limit (413)
    │   ├── UnsupportedFileType       caller: a document of a type no loader reads (415)
    │   └── UnreadableDocument        caller: an empty, textless or corrupt document (422)
    ├── ServiceNotReady               nobody: start-up is still loading models or the index
    ├── ProviderError                 nobody: the model backend failed; retry/fallback may help
    │   ├── RateLimited               the provider said 429 (carries retry_after seconds)
    │   ├── ProviderTimeout           no answer within the timeout or the call's deadline
    │   ├── ProviderUnavailable       5xx, connection refused or reset, broken stream
    │   └── CircuitOpen               the breaker is open: failing fast without calling
    ├── SafetyViolation               caller: a guard blocked the input or output (reason code)
    ├── BudgetExceeded                caller: the key's budget cannot cover the worst-case cost
    └── ToolError                     an agent tool failed (returned to the agent as an observation)

Vendor exceptions (httpx, llama.cpp, sentence-transformers) are translated into this tree in exactly
one place per backend; ``service/errors.py`` maps the tree to HTTP status codes once.
"""

from __future__ import annotations


class GenAIFactoryError(Exception):
    """Root of every error raised by GenAI Factory on purpose."""

    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(GenAIFactoryError):
    """Settings, a config file, or a required model/package is wrong or missing."""

    code = "configuration_error"


class InvalidRequestError(GenAIFactoryError):
    """The caller's request cannot be served as sent. Never retried, never falls back."""

    code = "invalid_request"


class NotFoundError(InvalidRequestError):
    """The named resource (document, session, model version ...) does not exist."""

    code = "not_found"


class ModelRequestRejected(InvalidRequestError):
    """A provider refused the request itself (a non-retryable 4xx such as 400 or 422)."""

    code = "model_request_rejected"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AuthenticationError(InvalidRequestError):
    """No API key was sent, or the key is malformed, unknown or revoked."""

    code = "unauthenticated"


class PermissionDenied(InvalidRequestError):
    """The API key is valid but may not do this (an admin endpoint with a non-admin key)."""

    code = "permission_denied"


class RateLimitExceeded(InvalidRequestError):
    """The key's requests or tokens per minute are used up; ``retry_after`` says when one fits.

    Not to be confused with :class:`RateLimited`, which is a provider's 429 to this service.
    """

    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DocumentTooLarge(InvalidRequestError):
    """An uploaded document is larger than ``rag.max_upload_bytes``."""

    code = "document_too_large"


class RequestTooLarge(InvalidRequestError):
    """A request body is larger than ``service.max_body_bytes``."""

    code = "request_too_large"


class UnsupportedFileType(InvalidRequestError):
    """No loader reads this kind of file (by its name's suffix)."""

    code = "unsupported_file_type"


class UnreadableDocument(InvalidRequestError):
    """The document is empty, holds no text, or cannot be decoded (not UTF-8, a broken PDF)."""

    code = "unreadable_document"


class ServiceNotReady(GenAIFactoryError):
    """The service is still starting: a model or the index is not loaded yet."""

    code = "not_ready"
    retry_after: float = 5.0


class ProviderError(GenAIFactoryError):
    """A model backend failed in a way that retrying or another backend may fix."""

    code = "provider_error"

    def __init__(self, message: str, *, provider: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code


class RateLimited(ProviderError):
    """The provider answered 429. ``retry_after`` is its ``Retry-After`` in seconds, if it sent one."""

    code = "provider_rate_limited"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    """No answer within the per-attempt timeout or the call's total deadline."""

    code = "provider_timeout"


class ProviderUnavailable(ProviderError):
    """The provider answered 5xx/408/409, refused or reset the connection, or broke a stream."""

    code = "provider_unavailable"


class CircuitOpen(ProviderError):
    """The circuit breaker for this backend is open; the call failed fast without being made."""

    code = "circuit_open"

    def __init__(self, message: str, *, provider: str = "", retry_after: float = 0.0) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class SafetyViolation(GenAIFactoryError):
    """A guard blocked the request or the answer. ``reason`` is a stable machine-readable code."""

    code = "safety_violation"

    def __init__(self, message: str, *, reason: str, guard: str = "", stage: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        #: The guard that blocked (``injection``) and where (``input``, ``output``), if known.
        self.guard = guard
        self.stage = stage


class BudgetExceeded(GenAIFactoryError):
    """The worst-case cost of the call does not fit in what is left of the key's budget."""

    code = "budget_exceeded"


class ToolError(GenAIFactoryError):
    """An agent tool failed; the agent sees it as an observation, never as a crash."""

    code = "tool_error"
