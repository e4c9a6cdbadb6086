"""How the agent talks to a model: JSON actions under a schema, or native tool calling.

Both formats turn the run so far (question, hints, exchanges) into chat messages and options, and a
reply into actions:

* :class:`JsonActionFormat` (llama.cpp and any model without native tools): the model writes one
  JSON action per reply, constrained by :func:`~genai_factory.agents.actions.action_schema` passed
  as ``ChatOptions.json_schema`` (llama.cpp turns it into a grammar, so even a 135M model emits a
  well-formed action); observations come back as user turns.
* :class:`NativeToolFormat` (OpenAI-compatible servers): the tools go out as function specs in
  ``ChatOptions.tools``; the model's ``tool_calls`` are the actions, observations go back as
  ``tool`` messages, and a reply without tool calls is the final answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from genai_factory.agents.actions import (
    AgentAction,
    action_schema,
    parse_json_action,
    parse_tool_calls,
    tool_specs,
)
from genai_factory.agents.prompting import (
    NATIVE_SYSTEM_PROMPT,
    OBSERVATION_PREFIX,
    action_text,
    clip,
    json_system_prompt,
    worked_example,
)
from genai_factory.agents.tools import Tool
from genai_factory.messages import ChatOptions, ChatResponse, Message

FormatName = Literal["json_schema", "json_staged", "native"]

FINAL_NUDGE = "No steps are left: reply with final_answer now, using the observations above."
#: Characters of an unparsable reply shown back to the model.
BAD_REPLY_CHARS = 200


@dataclass
class Exchange:
    """One model reply and what came of it: each action (``None`` for an unparsable reply) with
    its observation."""

    response: ChatResponse
    outcomes: list[tuple[AgentAction | None, str]] = field(default_factory=list)


class ActionFormat(Protocol):
    """Messages and options for the next model call, and the actions in its reply."""

    name: FormatName

    def messages(
        self, question: str, hints: Sequence[str], exchanges: Sequence[Exchange], *, final: bool
    ) -> list[Message]:
        """The conversation to send; ``final`` asks for the final answer now."""
        ...

    def options(self, base: ChatOptions, *, final: bool, tool_only: bool = False) -> ChatOptions:
        """``base`` with this format's constraint or tool specs; ``final``: only an answer may
        come next, ``tool_only``: only a tool call (where the format can enforce it)."""
        ...

    def parse(self, response: ChatResponse) -> list[AgentAction]:
        """The actions in a reply; raises ``ActionError`` when there are none to take."""
        ...


class JsonActionFormat:
    """One JSON action per reply, constrained by a JSON schema, with one worked example."""

    name: FormatName = "json_schema"

    def __init__(
        self,
        tools: Sequence[Tool[Any]],
        input_schemas: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.tools = list(tools)
        self._schema = action_schema(self.tools, input_schemas=input_schemas)
        self._tool_schema = action_schema(self.tools, tool_only=True, input_schemas=input_schemas)
        self._final_schema = action_schema(self.tools, final_only=True)

    def messages(
        self, question: str, hints: Sequence[str], exchanges: Sequence[Exchange], *, final: bool
    ) -> list[Message]:
        messages = [Message.system(json_system_prompt(self.tools, hints))]
        messages += worked_example(self.tools)
        messages.append(Message.user(question))
        for exchange in exchanges:
            for action, observation in exchange.outcomes:
                messages.append(Message.assistant(_reply_text(exchange.response, action)))
                messages.append(Message.user(OBSERVATION_PREFIX + observation))
        if final:
            last = messages.pop()
            messages.append(Message.user(f"{last.content}\n{FINAL_NUDGE}"))
        return messages

    def options(self, base: ChatOptions, *, final: bool, tool_only: bool = False) -> ChatOptions:
        schema = self._final_schema if final else self._tool_schema if tool_only else self._schema
        return base.model_copy(update={"json_schema": schema, "tools": None})

    def parse(self, response: ChatResponse) -> list[AgentAction]:
        return [parse_json_action(response.text)]


def _reply_text(response: ChatResponse, action: AgentAction | None) -> str:
    """What the model said, as it is shown back to it: the action re-serialised, or the raw text."""
    if action is None:
        return clip(response.text, BAD_REPLY_CHARS) or "(empty reply)"
    return action_text(action.tool, dict(action.input), action.thought)


class NativeToolFormat:
    """Native tool calling: function specs out, ``tool_calls`` in, ``tool`` messages back."""

    name: FormatName = "native"

    def __init__(self, tools: Sequence[Tool[Any]]) -> None:
        self.tools = list(tools)
        self._specs = tool_specs(self.tools)

    def messages(
        self, question: str, hints: Sequence[str], exchanges: Sequence[Exchange], *, final: bool
    ) -> list[Message]:
        system = "\n".join([NATIVE_SYSTEM_PROMPT, *hints])
        messages = [Message.system(system), Message.user(question)]
        for exchange in exchanges:
            messages += _native_turns(exchange)
        if final:
            messages.append(Message.user("No tool calls are left: answer now from the results."))
        return messages

    def options(self, base: ChatOptions, *, final: bool, tool_only: bool = False) -> ChatOptions:
        return base.model_copy(
            update={"tools": None if final else self._specs, "json_schema": None}
        )

    def parse(self, response: ChatResponse) -> list[AgentAction]:
        return parse_tool_calls(response.tool_calls, response.text)


def _native_turns(exchange: Exchange) -> list[Message]:
    response = exchange.response
    calls = tuple(response.tool_calls)
    turns = [Message(role="assistant", content=response.text, tool_calls=calls)]
    for action, observation in exchange.outcomes:
        if action is not None and action.call_id is not None:
            turns.append(Message(role="tool", content=observation, tool_call_id=action.call_id))
        else:
            turns.append(Message.user(OBSERVATION_PREFIX + observation))
    return turns
