"""``MeteredModel``: a ``ChatModel`` wrapper that charges each call to the requesting key.

Around every call made while serving a keyed request it reserves the worst case (tokens per
minute and budget, from the real messages and ``max_tokens``), calls the inner model, and settles
with the real usage. Calls outside a request, or with auth off, pass straight through. Put it
outermost, around the retry / breaker / fallback chain, so one call is charged once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from genai_factory.gateway.context import current_request
from genai_factory.gateway.service import GatewayService
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message, Usage


class MeteredModel(ChatModel):
    """Charges ``inner``'s calls to the current request's key (see the module docstring)."""

    def __init__(self, inner: ChatModel, gateway: GatewayService) -> None:
        self.inner = inner
        self.gateway = gateway
        self.name = inner.name
        self.adopt_capabilities(inner)

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        context = current_request()
        if context is None or context.key is None:
            return await self.inner.chat(messages, options)
        max_tokens = (options or ChatOptions()).max_tokens
        hold = await self.gateway.reserve_call(context.key, messages, max_tokens, context=context)
        try:
            response = await self.inner.chat(messages, options)
        except BaseException:
            context.charges.append(await asyncio.shield(self.gateway.settle_call(hold, None)))
            raise
        context.charges.append(await self.gateway.settle_call(hold, response))
        return response

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        context = current_request()
        if context is None or context.key is None:
            async for delta in self.inner.stream(messages, options):
                yield delta
            return
        max_tokens = (options or ChatOptions()).max_tokens
        hold = await self.gateway.reserve_call(context.key, messages, max_tokens, context=context)
        pieces: list[str] = []
        usage: Usage | None = None
        model = self.name
        try:
            async for delta in self.inner.stream(messages, options):
                pieces.append(delta.text)
                usage = delta.usage or usage
                model = delta.model or model
                yield delta
        finally:
            if usage is None and pieces:  # cut short: charge what was produced
                text = "".join(pieces)
                usage = Usage(
                    prompt_tokens=hold.prompt_tokens,
                    completion_tokens=estimate_tokens(text),
                    estimated=True,
                )
            done = None if usage is None else ChatResponse(text="", usage=usage, model=model)
            context.charges.append(await asyncio.shield(self.gateway.settle_call(hold, done)))

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
