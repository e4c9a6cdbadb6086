"""``FallbackModel``: an ordered chain of models; the first that answers wins.

It moves to the next model on any :class:`ProviderError` (rate limits, timeouts, 5xx, open
circuits, bad provider credentials), and never on the caller's own errors
(:class:`InvalidRequestError`): a request that one model rejects as malformed would be rejected by
all of them, and trying them all only costs money. The response's ``model`` names the model that
answered. A stream falls back only until its first delta has been delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from genai_factory.exceptions import ProviderError, ProviderUnavailable
from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message

FallbackListener = Callable[[str, str, ProviderError], None]


class FallbackModel(ChatModel):
    """Try ``primary``, then each of ``backups`` in order.

    Args:
        on_fallback: called with ``(failed_model, next_model, error)`` each time the chain moves on.
    """

    def __init__(
        self,
        primary: ChatModel,
        *backups: ChatModel,
        on_fallback: FallbackListener | None = None,
    ) -> None:
        self.models: tuple[ChatModel, ...] = (primary, *backups)
        self.name = primary.name
        self.adopt_capabilities(primary)
        self._listener = on_fallback

    def _moved_on(self, index: int, error: ProviderError) -> None:
        if self._listener is not None and index + 1 < len(self.models):
            self._listener(self.models[index].name, self.models[index + 1].name, error)

    def _exhausted(self, errors: list[ProviderError]) -> ProviderUnavailable:
        summary = "; ".join(
            f"{m.name}: {e.message}" for m, e in zip(self.models, errors, strict=False)
        )
        exhausted = ProviderUnavailable(f"every model in the fallback chain failed ({summary})")
        exhausted.__cause__ = errors[-1]
        return exhausted

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        errors: list[ProviderError] = []
        for index, model in enumerate(self.models):
            try:
                return await model.chat(messages, options)
            except ProviderError as exc:
                errors.append(exc)
                self._moved_on(index, exc)
        raise self._exhausted(errors)

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        errors: list[ProviderError] = []
        for index, model in enumerate(self.models):
            started = False
            try:
                async for delta in model.stream(messages, options):
                    started = True
                    yield delta
                return
            except ProviderError as exc:
                if started:
                    raise
                errors.append(exc)
                self._moved_on(index, exc)
        raise self._exhausted(errors)

    def count_tokens(self, text: str) -> int:
        return self.models[0].count_tokens(text)

    async def aclose(self) -> None:
        for model in self.models:
            await model.aclose()
