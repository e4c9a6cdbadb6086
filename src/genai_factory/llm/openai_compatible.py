"""Any OpenAI-compatible chat server (vLLM, OpenAI, Ollama, llama.cpp server) over async httpx.

HTTP and network failures are translated into the package's exceptions in one place,
:func:`translate_status` and :func:`translate_transport`, so the wrappers above can decide what to
retry and when to fall back without knowing about httpx.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from genai_factory.exceptions import (
    GenAIFactoryError,
    ModelRequestRejected,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import estimate_prompt_tokens, estimate_tokens
from genai_factory.messages import (
    ChatDelta,
    ChatOptions,
    ChatResponse,
    FinishReason,
    Message,
    ToolCall,
    Usage,
)

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message", error))[:200]
        return str(error)[:200]
    return str(body)[:200]


def translate_status(response: httpx.Response, provider: str) -> GenAIFactoryError:
    """The exception for a non-2xx response."""
    status = response.status_code
    detail = f"{provider} answered HTTP {status}: {_error_detail(response)}"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(detail, provider=provider, retry_after=retry_after)
    if status in RETRYABLE_STATUS or status >= 500:
        return ProviderUnavailable(detail, provider=provider, status_code=status)
    if status in (401, 403):
        # Our credentials for the provider are wrong: not the caller's fault, not retryable,
        # but another backend may still answer.
        return ProviderError(detail, provider=provider, status_code=status)
    return ModelRequestRejected(detail, status_code=status)


def translate_transport(exc: httpx.HTTPError, provider: str) -> ProviderError:
    """The exception for a transport failure (timeout, refused or reset connection)."""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{provider} timed out: {type(exc).__name__}", provider=provider)
    return ProviderUnavailable(f"{provider} connection failed: {exc!r}", provider=provider)


def _finish(value: Any) -> FinishReason:
    return "length" if value == "length" else "stop"


def message_payload(message: Message) -> dict[str, Any]:
    """One message as the OpenAI API wants it; tool-calling fields only when present."""
    payload: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        payload["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        payload["tool_call_id"] = message.tool_call_id
    return payload


def parse_tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    """The ``tool_calls`` of a completion message (``[]`` when there are none)."""
    calls = []
    for raw in message.get("tool_calls") or []:
        function = raw["function"]
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # some servers send an object instead of JSON text
            arguments = json.dumps(arguments if arguments is not None else {})
        calls.append(
            ToolCall(id=str(raw.get("id") or ""), name=str(function["name"]), arguments=arguments)
        )
    return calls


class OpenAICompatibleModel(ChatModel):
    """Chat completions from an OpenAI-compatible HTTP server.

    Args:
        base_url: the API root, e.g. ``http://localhost:8001/v1``.
        model: the model id the server knows.
        api_key: bearer token, if the server needs one.
        timeout_s: per-request timeout (connect, read, write, pool).
        client: an ``httpx.AsyncClient`` to share; one is created (and closed) otherwise.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.provider = f"openai_compatible:{self.base_url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))
        self._headers = headers

    def _payload(
        self, messages: Sequence[Message], options: ChatOptions, stream: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [message_payload(m) for m in messages],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "stream": stream,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.json_schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": options.json_schema},
            }
        if options.tools:
            payload["tools"] = list(options.tools)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _usage(self, raw: dict[str, Any] | None, messages: Sequence[Message], text: str) -> Usage:
        if raw and "prompt_tokens" in raw:
            return Usage(
                prompt_tokens=int(raw.get("prompt_tokens") or 0),
                completion_tokens=int(raw.get("completion_tokens") or 0),
            )
        return Usage(
            prompt_tokens=estimate_prompt_tokens(messages),
            completion_tokens=estimate_tokens(text),
            estimated=True,
        )

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        opts = options or ChatOptions()
        url = f"{self.base_url}/chat/completions"
        try:
            response = await self._client.post(
                url, json=self._payload(messages, opts, False), headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise translate_transport(exc, self.provider) from exc
        if response.status_code >= 400:
            raise translate_status(response, self.provider)
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
            tool_calls = parse_tool_calls(choice["message"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderUnavailable(
                f"{self.provider} sent a malformed completion", provider=self.provider
            ) from exc
        return ChatResponse(
            text=text,
            usage=self._usage(body.get("usage"), messages, text),
            finish_reason=_finish(choice.get("finish_reason")),
            model=str(body.get("model") or self.name),
            tool_calls=tool_calls,
        )

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        opts = options or ChatOptions()
        url = f"{self.base_url}/chat/completions"
        request = self._client.build_request(
            "POST", url, json=self._payload(messages, opts, True), headers=self._headers
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise translate_transport(exc, self.provider) from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                raise translate_status(response, self.provider)
            async for delta in self._read_events(response, messages):
                yield delta
        except httpx.HTTPError as exc:
            raise translate_transport(exc, self.provider) from exc
        finally:
            await response.aclose()

    async def _read_events(
        self, response: httpx.Response, messages: Sequence[Message]
    ) -> AsyncIterator[ChatDelta]:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        model = self.name
        done = False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ProviderUnavailable(
                    f"{self.provider} sent a malformed stream event", provider=self.provider
                ) from exc
            model = str(event.get("model") or model)
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    parts.append(text)
                    yield ChatDelta(text=text, model=model)
        if finish is None and not done:
            raise ProviderUnavailable(
                f"{self.provider} ended the stream before it finished", provider=self.provider
            )
        yield ChatDelta(
            finish_reason=_finish(finish),
            usage=self._usage(usage, messages, "".join(parts)),
            model=model,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
