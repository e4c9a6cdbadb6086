"""Run a tool for the agent and turn whatever happens into an observation, never an exception.

:func:`observe` validates and runs the call (through :func:`~genai_factory.agents.tools.call_tool`,
so the tool's schema and timeout apply) and returns an :class:`Outcome`: the result on success,
``Error: <reason>`` text on a refused request, a tool error, a timeout, or even a crash of the tool
(whose details are logged, not shown to the model).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, JsonValue

from genai_factory.agents.tools import Tool, call_tool
from genai_factory.exceptions import InvalidRequestError, ToolError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one tool call produced, and how long it took."""

    result: str | BaseModel
    ok: bool
    tool_ms: float


async def observe(tool: Tool[Any], raw_input: Mapping[str, JsonValue]) -> Outcome:
    """Call ``tool`` with ``raw_input``; every failure becomes an ``Error: ...`` outcome."""
    mark = time.perf_counter()
    try:
        result = await call_tool(tool, raw_input)
    except (ToolError, InvalidRequestError) as exc:
        return Outcome(f"Error: {exc.message}", False, ms_since(mark))
    except Exception as exc:  # a broken tool must not crash the agent
        log.exception("agent_tool_crashed", tool=tool.name)
        return Outcome(f"Error: {tool.name} failed ({type(exc).__name__})", False, ms_since(mark))
    return Outcome(result, True, ms_since(mark))


def ms_since(mark: float) -> float:
    """Milliseconds since ``time.perf_counter()`` was ``mark``, rounded to 0.01."""
    return round((time.perf_counter() - mark) * 1000, 2)
