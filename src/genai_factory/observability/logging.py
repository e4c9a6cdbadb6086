"""Structured logging with structlog: JSON lines for machines, or readable lines for a terminal.

Standard-library loggers (uvicorn, httpx) are routed through the same renderer, so one process
writes one format. Logs go to stderr; stdout stays free for command output such as ``--json``.
Values bound with ``structlog.contextvars`` (the service binds ``trace_id`` and ``key_id`` per
request) appear in every line. ``json_logs="auto"`` writes JSON when stderr is not a terminal
(containers, log shippers) and readable lines when a person watches.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def wants_json(json_logs: bool | Literal["auto"]) -> bool:
    """Resolve ``auto``: JSON unless stderr is a terminal."""
    return not sys.stderr.isatty() if json_logs == "auto" else json_logs


def configure_logging(level: str = "info", *, json_logs: bool | Literal["auto"] = False) -> None:
    """Configure structlog and the standard library for this process (call once, at the edge)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    as_json = wants_json(json_logs)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        shared.append(structlog.processors.dict_tracebacks)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
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
