"""The ``ChatModel`` interface: one required async method, optional streaming.

Contract for implementers:

* ``chat(messages, options)`` returns a complete :class:`ChatResponse` whose ``model`` names the model
  that answered and whose ``usage`` is filled (from the backend, else counted locally with
  ``estimated=True``).
* Failures are raised as the package's own exceptions: :class:`ProviderError` subclasses when a retry
  or another backend may help, :class:`InvalidRequestError` subclasses when the request itself is
  wrong. Vendor exceptions never escape.
* ``stream`` yields :class:`ChatDelta` pieces; the last one carries ``finish_reason`` and ``usage``.
  The default implementation yields the whole ``chat`` answer as one delta.
* Closing the async generator early (the client went away) stops generation.

Wrappers (retry, circuit breaker, fallback ...) are ``ChatModel`` s around another ``ChatModel``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence

from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message


class ChatModel(abc.ABC):
    """A language model that answers chat messages."""

    #: The model id reported in responses (``provider:model``).
    name: str = "model"

    @abc.abstractmethod
    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        """Answer ``messages`` in full."""

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        """Answer ``messages`` piece by piece. Default: one delta with the whole answer."""
        response = await self.chat(messages, options)
        yield ChatDelta(
            text=response.text,
            finish_reason=response.finish_reason,
            usage=response.usage,
            model=response.model,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes for this model. Default: a tokenizer-free estimate."""
        return estimate_tokens(text)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release clients, threads and memory. Safe to call twice."""
