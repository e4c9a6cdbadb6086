"""Request and response bodies of the HTTP API (the answer body is ``AssistantAnswer``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GenerateRequest(BaseModel):
    """``POST /v1/assistant/generate``. ``query`` length is checked against the configured max."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="The question or instruction.")
    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    mode: Literal["auto", "chat", "rag", "agent"] = "auto"
    max_tokens: int | None = Field(default=None, ge=1, le=4096, strict=True)
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    reveal_pii: bool = Field(
        default=False,
        description="Map reversible-redaction placeholders in the answer back to the original "
        "values (needs safety.reversible_redaction and an admin key; the model, the session "
        "history and the logs still only see placeholders).",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    model: str
    model_loaded: bool
    index_chunks: int
    breakers: dict[str, str] = Field(default_factory=dict)
