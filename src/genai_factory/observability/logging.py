"""Structured logging with structlog: JSON lines for machines, or readable lines for a terminal.

Standard-library loggers (uvicorn, httpx) are routed through the same renderer, so one process
writes one format. Logs go to stderr; stdout stays free for command output such as ``--json``.
Values bound with ``structlog.contextvars`` (the service binds ``trace_id`` and ``key_id`` per
request) appear in every line. ``json_logs="auto"`` writes JSON when stderr is not a terminal
(containers, log shippers) and readable lines when a person watches.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

#: API key secrets (``gf_<id>_<secret>``) and bearer credentials, wherever they appear in a line.
SECRET_PATTERN = re.compile(r"(gf_[A-Za-z0-9]+_)[A-Za-z0-9_\-]{8,}|((?i:bearer)\s+)[^\s'\",]{8,}")
#: Longer string values are cut: a log line is no place for a request body.
MAX_VALUE_CHARS = 4_000


def wants_json(json_logs: bool | Literal["auto"]) -> bool:
    """Resolve ``auto``: JSON unless stderr is a terminal."""
    return not sys.stderr.isatty() if json_logs == "auto" else json_logs


def scrub(text: str) -> str:
    """``text`` with API key secrets and bearer credentials masked, cut to ``MAX_VALUE_CHARS``."""
    masked = SECRET_PATTERN.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)
    if len(masked) > MAX_VALUE_CHARS:
        return f"{masked[:MAX_VALUE_CHARS]}... [{len(masked) - MAX_VALUE_CHARS} chars cut]"
    return masked


def scrub_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: every string value (rendered tracebacks included) scrubbed."""
    for key, value in event.items():
        event[key] = _scrubbed(value)
    return event


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


def configure_logging(level: str = "info", *, json_logs: bool | Literal["auto"] = False) -> None:
    """Configure structlog and the standard library for this process (call once, at the edge)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    as_json = wants_json(json_logs)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks never carry local variables: a frame's locals hold request headers (API keys),
    # key plaintexts and upload bodies. Tracebacks are rendered to text before the scrubber runs.
    if as_json:
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        shared.append(structlog.processors.ExceptionRenderer(transformer))
    else:
        shared.append(structlog.processors.ExceptionRenderer())
    shared.append(scrub_secrets)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn installs its own handlers (and stops propagation) when it starts in this process:
    # hand its loggers back to the root handler so they use the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        own = logging.getLogger(name)
        own.handlers[:] = []
        own.propagate = True
    for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
