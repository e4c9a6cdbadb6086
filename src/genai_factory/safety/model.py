"""``GuardedModel``: a ``ChatModel`` wrapper that runs a safety pipeline around another model.

The last user message goes through the route's input guards (a block raises
:class:`~genai_factory.exceptions.SafetyViolation`, a redaction replaces the message), and the
answer through its output guards; streams are guarded through the hold-back buffer, so no unchecked
text reaches the caller. Composes with the retry, breaker and fallback wrappers in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message
from genai_factory.safety.pipeline import SafetyPipeline
from genai_factory.safety.redaction import RedactionVault


class GuardedModel(ChatModel):
    """``inner`` with ``pipeline``'s guards of ``route`` on its input and output."""

    def __init__(self, inner: ChatModel, pipeline: SafetyPipeline, *, route: str = "chat") -> None:
        self.inner = inner
        self.pipeline = pipeline
        self.route = route
        self.name = inner.name
        self.adopt_capabilities(inner)

    def _guard_input(
        self, messages: Sequence[Message]
    ) -> tuple[list[Message], str, RedactionVault | None]:
        guarded = list(messages)
        vault = self.pipeline.new_vault()
        system_prompt = next((m.content for m in guarded if m.role == "system"), "")
        for position in range(len(guarded) - 1, -1, -1):
            if guarded[position].role == "user":
                message = guarded[position]
                checked = self.pipeline.check_input(message.content, route=self.route, vault=vault)
                guarded[position] = message.model_copy(update={"content": checked.text})
                break
        return guarded, system_prompt, vault

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        guarded, system_prompt, vault = self._guard_input(messages)
        response = await self.inner.chat(guarded, options)
        checked = self.pipeline.check_output(
            response.text, route=self.route, system_prompt=system_prompt, vault=vault
        )
        return response.model_copy(update={"text": checked.text})

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        guarded, system_prompt, vault = self._guard_input(messages)
        deltas = self.inner.stream(guarded, options)
        async for delta in self.pipeline.guard_stream(
            deltas, route=self.route, system_prompt=system_prompt, vault=vault
        ):
            yield delta

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
