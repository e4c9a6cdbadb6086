"""The bodies of the OpenAI-compatible endpoints, in OpenAI's own shapes.

Requests accept what OpenAI clients send and ignore fields this service does not use (``user``,
``presence_penalty`` ...), but refuse what it cannot honour rather than silently ignoring it:
``n`` other than 1, ``tools``, and content parts other than text.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from genai_factory.messages import Citation, FinishReason, Message, Usage

OpenAIFinishReason = Literal["stop", "length"]
#: Our finish reasons in OpenAI's vocabulary (a cut or failed answer still "stopped").
FINISH_REASONS: dict[FinishReason, OpenAIFinishReason] = {
    "stop": "stop",
    "length": "length",
    "error": "stop",
    "cancelled": "stop",
}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    """One message of the request; ``developer`` is treated as ``system``."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_call_id: str | None = None

    def to_message(self) -> Message:
        content = self.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if self.role == "developer" else self.role
        return Message(
            role=role, content=content or "", name=self.name, tool_call_id=self.tool_call_id
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=1000)
    max_tokens: int | None = Field(default=None, ge=1, le=32768, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    #: GenAI Factory extensions (OpenAI clients send them with ``extra_body``).
    mode: Literal["auto", "chat", "rag", "agent"] | None = Field(
        default=None,
        description="Run an assistant turn instead of the model alone: the last user message is "
        "the question, earlier user and assistant messages its history (as on "
        "/v1/assistant/generate; sampling options other than max_tokens are the service's).",
    )
    reveal_pii: bool = Field(
        default=False,
        description="As on /v1/assistant/generate: needs reversible redaction and an admin key.",
    )

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            raise ValueError("tools are not supported on this endpoint")
        return value

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> CompletionUsage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    finish_reason: OpenAIFinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    """The answer of a non-streamed request."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None
    #: GenAI Factory extension: the sources of an assistant turn (``mode``), cited or not.
    citations: list[Citation] = Field(default_factory=list)


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: OpenAIFinishReason | None = None
    logprobs: None = None

    @field_serializer("delta")
    def _only_set(self, delta: ChunkDelta) -> dict[str, str]:
        """Like OpenAI: only the delta's present fields (the last chunk's delta is ``{}``)."""
        return delta.model_dump(exclude_none=True)


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed answer."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "genai-factory"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
