"""``GuardedModel``: a ``ChatModel`` wrapper that runs a safety pipeline around another model.

It screens the conversation and the answer exactly as the service's routes do, through
:class:`~genai_factory.safety.gate.RequestSafety` (every ``user`` message through the input guards,
``tool`` messages through the context guards, the answer through the output guards; streams
through the hold-back buffer, so no unchecked text reaches the caller). Composes with the retry,
breaker and fallback wrappers in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message
from genai_factory.safety.gate import RequestSafety, SafetyGate
from genai_factory.safety.pipeline import SafetyPipeline


class GuardedModel(ChatModel):
    """``inner`` with ``pipeline``'s guards of ``route`` on its input and output."""

    def __init__(self, inner: ChatModel, pipeline: SafetyPipeline, *, route: str = "chat") -> None:
        self.inner = inner
        self.gate = SafetyGate(pipeline)
        self.route = route
        self.name = inner.name
        self.adopt_capabilities(inner)

    def _start(self, messages: Sequence[Message]) -> tuple[RequestSafety, list[Message]]:
        system_prompt = next((m.content for m in messages if m.role == "system"), "")
        safety = self.gate.start(self.route, system_prompt=system_prompt)
        return safety, safety.screen_messages(messages, self.route)

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        safety, screened = self._start(messages)
        response = await self.inner.chat(screened, options)
        return response.model_copy(update={"text": safety.answer(response.text, self.route)})

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        safety, screened = self._start(messages)
        async for delta in safety.stream(self.inner.stream(screened, options), self.route):
            yield delta

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
