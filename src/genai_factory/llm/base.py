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

Wrappers (retry, circuit breaker, fallback ...) are ``ChatModel`` s around another ``ChatModel``;
they take the capabilities of the model they wrap (:meth:`ChatModel.adopt_capabilities`).

Capabilities are class attributes of a backend, so decisions need no provider-name compare:
``local_weights`` (runs weights on this machine, so a promoted GGUF champion or adapter can be
swapped in), ``free_of_charge`` (an unpriced model of it costs nothing), ``native_tools``
(OpenAI-style tool calling) and ``grammar`` (grammar / JSON-schema constrained output).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genai_factory.exceptions import ConfigurationError
from genai_factory.llm.tokens import estimate_tokens
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message

if TYPE_CHECKING:
    from typing import Self

    from genai_factory.config import ModelSettings
    from genai_factory.llm.worker import ModelWorker


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do (see the module docstring)."""

    local_weights: bool = False
    native_tools: bool = False
    grammar: bool = False
    free_of_charge: bool = False


class ChatModel(abc.ABC):
    """A language model that answers chat messages."""

    #: The model id reported in responses (``provider:model``).
    name: str = "model"
    local_weights: bool = False
    native_tools: bool = False
    grammar: bool = False
    free_of_charge: bool = False

    @classmethod
    def from_settings(cls, settings: ModelSettings, worker: ModelWorker | None) -> Self:
        """The backend ``settings`` describe (registered backends override this)."""
        raise ConfigurationError(f"{cls.__name__} cannot be built from settings")

    @classmethod
    def class_capabilities(cls) -> Capabilities:
        """The capabilities every instance of this class starts with."""
        return Capabilities(cls.local_weights, cls.native_tools, cls.grammar, cls.free_of_charge)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            self.local_weights, self.native_tools, self.grammar, self.free_of_charge
        )

    def adopt_capabilities(self, model: ChatModel) -> None:
        """Take ``model``'s capabilities: a wrapper calls this with the model it wraps."""
        self.local_weights = model.local_weights
        self.native_tools = model.native_tools
        self.grammar = model.grammar
        self.free_of_charge = model.free_of_charge

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
