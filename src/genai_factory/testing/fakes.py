"""Fakes shipped for users' tests: a scripted chat model and a deterministic embedder.

Both honour the same contracts as the real components, so code tested against them runs unchanged
against llama.cpp, an OpenAI-compatible server or sentence-transformers.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_prompt_tokens, estimate_tokens
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message, Usage

if TYPE_CHECKING:
    from genai_factory.config import ModelSettings
    from genai_factory.llm.worker import ModelWorker

Reply = str | BaseException | Callable[[Sequence[Message]], str]
#: Calls kept by a fake built from settings (``llm.provider=fake``): a service serving it for
#: hours must not keep every prompt it was sent.
SERVED_CALLS_KEPT = 100


class FakeChatModel(ChatModel):
    """A chat model that answers from a script.

    Each call takes the next item of ``replies``: a string is the answer, an exception is raised, a
    callable gets the messages and returns the answer. When the script runs out (or none was given)
    the model echoes the last user message. Every call's messages are kept in ``calls``, oldest
    first; with ``keep_calls`` only that many of the latest (a model built from settings, which a
    service may call millions of times, keeps :data:`SERVED_CALLS_KEPT`).
    """

    #: Costs nothing, like a local model, but runs no weights: no champion is swapped in.
    free_of_charge = True

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        name: str = "fake-chat",
        keep_calls: int | None = None,
    ) -> None:
        self.name = name
        self._replies = list(replies)
        self.calls: list[list[Message]] = []
        self.keep_calls = keep_calls

    @classmethod
    def from_settings(cls, settings: ModelSettings, worker: ModelWorker | None) -> FakeChatModel:
        return cls(name=settings.model, keep_calls=SERVED_CALLS_KEPT)

    def _record(self, messages: Sequence[Message]) -> None:
        self.calls.append(list(messages))
        if self.keep_calls is not None and len(self.calls) > self.keep_calls:
            del self.calls[: len(self.calls) - self.keep_calls]

    def _next_text(self, messages: Sequence[Message]) -> str:
        self._record(messages)
        reply: Reply
        if self._replies:
            reply = self._replies.pop(0)
        else:
            last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
            reply = f"echo: {last_user}"
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(messages)
        return reply

    def _truncate(self, text: str, options: ChatOptions) -> tuple[str, bool]:
        words = text.split(" ")
        budget_ok = estimate_tokens(text) <= options.max_tokens
        if budget_ok:
            return text, False
        kept: list[str] = []
        for word in words:
            if estimate_tokens(" ".join([*kept, word])) > options.max_tokens:
                break
            kept.append(word)
        return " ".join(kept), True

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        opts = options or ChatOptions()
        text, cut = self._truncate(self._next_text(messages), opts)
        return ChatResponse(
            text=text,
            usage=Usage(
                prompt_tokens=estimate_prompt_tokens(messages),
                completion_tokens=estimate_tokens(text),
                estimated=True,
            ),
            finish_reason="length" if cut else "stop",
            model=self.name,
        )

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        response = await self.chat(messages, options)
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            yield ChatDelta(text=piece, model=self.name)
        yield ChatDelta(finish_reason=response.finish_reason, usage=response.usage, model=self.name)


class FakeEmbedder:
    """Deterministic bag-of-words embeddings: texts sharing words are similar, others are not.

    Words are hashed into ``dimension`` buckets and the vector is L2-normalised, so cosine similarity
    behaves like a (crude) lexical similarity. Good enough to test retrieval end to end.
    """

    def __init__(self, dimension: int = 256, *, name: str = "fake-embedder") -> None:
        self.dimension = dimension
        self.name = name
        self.calls = 0

    def _vector(self, text: str) -> NDArray[np.float32]:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            vector[int.from_bytes(digest, "little") % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 and not math.isnan(norm) else vector

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls += 1
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    async def aclose(self) -> None:
        return None
