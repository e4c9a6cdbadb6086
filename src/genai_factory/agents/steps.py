"""What an agent run leaves behind: its steps (the trace) and its result.

Every step the loop takes is an :class:`AgentStep`: which tool ran (or ``final_answer``, or
``invalid`` when the model's action could not be parsed), with what input, an excerpt of the
observation, whether it worked and how long the model and the tool took. :class:`AgentResult` holds
the answer, the steps, why the loop stopped and the tokens it spent. Both serialise to JSON and
appear in the assistant's answer when the agent route ran.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue, computed_field

from genai_factory.messages import Usage

#: Why a run stopped: a final answer, or a limit (then the answer is the best the loop had).
StopReason = Literal["answer", "max_steps", "timeout", "token_budget"]

#: The pseudo-tools of a step: the model answered, or its action was not valid.
FINAL_ANSWER = "final_answer"
INVALID_ACTION = "invalid"


class AgentStep(BaseModel):
    """One step of the loop: the model chose an action, the loop ran it and observed the result.

    ``automatic`` marks a step the loop took by itself (for example reading the database schema
    before the first model call), not one the model chose.
    """

    index: int
    tool: str
    input: dict[str, JsonValue] = Field(default_factory=dict)
    thought: str = ""
    observation: str = ""
    ok: bool = True
    automatic: bool = False
    model_ms: float = 0.0
    tool_ms: float = 0.0


class AgentResult(BaseModel):
    """The outcome of one agent run."""

    answer: str
    steps: list[AgentStep] = Field(default_factory=list)
    stop_reason: StopReason = "answer"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    latency_ms: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def limit_hit(self) -> bool:
        """True when a limit stopped the run and the answer is the best the loop had."""
        return self.stop_reason != "answer"

    def tool_steps(self, tool: str) -> list[AgentStep]:
        """The steps that ran ``tool``."""
        return [step for step in self.steps if step.tool == tool]
