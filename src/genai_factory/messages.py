"""The shared vocabulary: chat messages, responses, usage, documents, chunks and citations.

These are plain pydantic models without behaviour beyond validation, so every layer (LLM backends,
RAG, the service, the CLI) can exchange them and serialise them to JSON unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "error", "cancelled"]


def _as_utc(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


#: A time in UTC. Stores keep naive UTC values; the API writes them with their offset
#: (``2026-12-06T14:08:36+00:00``), so no client has to guess the zone.
UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=str, when_used="json")]


class ToolCall(BaseModel):
    """A model's request to call a tool natively (OpenAI ``tool_calls``); ``arguments`` is raw JSON."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"


class Message(BaseModel):
    """One chat message.

    ``tool_calls`` (on an assistant message) and ``tool_call_id`` (on a ``tool`` message) carry
    native tool calling; backends without it ignore both.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(role="assistant", content=content)


class Usage(BaseModel):
    """Tokens spent by one call and what they cost. ``estimated`` is true when counted locally."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            estimated=self.estimated or other.estimated,
        )


class ChatOptions(BaseModel):
    """Generation parameters understood by every backend (each ignores what it cannot honour)."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    #: Native tool calling: OpenAI-style function specs (``{"type": "function", "function": ...}``).
    #: Backends without native tool calling ignore them.
    tools: tuple[dict[str, Any], ...] | None = None
    #: The prompt asks for an answer from numbered sources or a plain decline (the RAG prompt).
    #: A backend whose model carries a calibrated decline shift (``llm.decline_shift``, e.g. the
    #: shipped adapter's) applies it to the first answer token; others ignore the flag.
    answer_from_sources: bool = False


class ChatResponse(BaseModel):
    """A complete answer from a model. ``model`` names the model that actually answered."""

    text: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: FinishReason = "stop"
    model: str
    #: Tools the model asked to call (native tool calling only).
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ChatDelta(BaseModel):
    """One piece of a streamed answer. The last delta carries ``finish_reason`` and ``usage``."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str = ""


class Document(BaseModel):
    """A source document. ``id`` is stable: derived from the source path, not from its content."""

    id: str
    text: str
    title: str
    source: str
    content_hash: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class Chunk(BaseModel):
    """A piece of a document that is embedded and retrieved on its own."""

    id: str
    document_id: str
    text: str
    position: int
    title: str
    source: str
    heading: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class ScoredChunk(BaseModel):
    """A retrieved chunk with its similarity score (higher is more similar).

    ``score`` is the cosine similarity of the chunk to the query, comparable across queries (the
    assistant's ``min_score`` gate uses it). Hybrid search ranks by fused evidence, so its hits come
    in ranked order and ``scores`` holds each stage's score (``dense``, ``keyword``, ``fused``, ...).
    """

    chunk: Chunk
    score: float
    scores: dict[str, float] = Field(default_factory=dict)


class Citation(BaseModel):
    """A numbered source the answer may cite as ``[index]``."""

    index: int
    document_id: str
    chunk_id: str
    title: str
    source: str
    excerpt: str
    score: float
    cited: bool = False
