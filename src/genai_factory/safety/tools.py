"""``ScreenedTool``: a tool whose outputs pass the context guards before an agent reads them.

Tool outputs are the indirect-injection surface of an agent (a web page, a database row or a file
can carry instructions meant for the model). The wrapper is itself a tool: same name, description,
arguments and timeout. A flagged output never reaches the model; the agent sees a
:class:`~genai_factory.exceptions.ToolError` observation naming the reason instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from genai_factory.exceptions import ToolError
from genai_factory.safety.pipeline import SafetyPipeline, SafetyReport


class ScreenedTool:
    """``inner`` with its outputs screened by ``pipeline``'s context guards of ``route``.

    ``report``: the safety report of the request the tool serves; a withheld output is added to
    its dropped sources.
    """

    def __init__(
        self,
        inner: Any,
        pipeline: SafetyPipeline,
        *,
        route: str = "agent",
        report: SafetyReport | None = None,
    ) -> None:
        self.inner = inner
        self.pipeline = pipeline
        self.route = route
        self.report = report
        self.name: str = inner.name
        self.description: str = inner.description
        self.args_schema: type[BaseModel] = inner.args_schema
        self.timeout_s: float = inner.timeout_s

    async def run(self, args: Any) -> str | BaseModel:
        result: str | BaseModel = await self.inner.run(args)
        text = result if isinstance(result, str) else result.model_dump_json()
        _, dropped = self.pipeline.screen_context([(self.name, text)], route=self.route)
        if dropped:
            if self.report is not None:
                self.report.dropped_sources += dropped
            raise ToolError(
                f"the output of {self.name} was withheld by the safety guards "
                f"({dropped[0]['reason']}); do not rely on it"
            )
        return result


def screen_agent_tools(agent: Any, pipeline: SafetyPipeline) -> None:
    """Wrap every tool of ``agent`` (its ``tools`` mapping, name → tool) in a :class:`ScreenedTool`."""
    agent.tools = {
        name: tool if isinstance(tool, ScreenedTool) else ScreenedTool(tool, pipeline)
        for name, tool in agent.tools.items()
    }
