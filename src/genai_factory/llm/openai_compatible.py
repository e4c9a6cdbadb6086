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
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx

from genai_factory.exceptions import (
    ConfigurationError,
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

if TYPE_CHECKING:
    from genai_factory.config import ModelSettings
    from genai_factory.llm.worker import ModelWorker

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

    The calls go through one pooled ``aiohttp`` session, opened on first use in the running event
    loop: at gateway loads (hundreds of calls a second) its connection pool costs a fraction of
    httpx's, whose pool checks every pooled connection's socket on each request.

    Args:
        base_url: the API root, e.g. ``http://localhost:8001/v1``.
        model: the model id the server knows.
        api_key: bearer token, if the server needs one.
        timeout_s: connect timeout, and the longest wait for the next bytes of a response.
        session: an ``aiohttp.ClientSession`` to share; one is created (and closed) otherwise.
        max_connections: connections to the server kept open at most (``0``: no limit).
    """

    native_tools = True
    grammar = True

    @classmethod
    def from_settings(
        cls, settings: ModelSettings, worker: ModelWorker | None
    ) -> OpenAICompatibleModel:
        if settings.base_url is None:
            raise ConfigurationError("provider 'openai_compatible' needs base_url")
        return cls(
            settings.base_url,
            settings.model,
            api_key=settings.resolved_api_key(),
            timeout_s=settings.timeout_s,
        )

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        session: aiohttp.ClientSession | None = None,
        name: str | None = None,
        max_connections: int = 256,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.provider = f"openai_compatible:{self.base_url}"
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=timeout_s
        )
        self._max_connections = max_connections

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, json_serialize=_dumps
            )
        return self._session

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
        payload = self._payload(messages, opts, False)
        try:
            async with self._client().post(
                self._url, json=payload, headers=self._headers
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise translate_status(_as_httpx(response, raw), self.provider)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate_aiohttp(exc, self.provider) from exc
        try:
            body = json.loads(raw)
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
        payload = self._payload(messages, opts, True)
        try:
            async with self._client().post(
                self._url, json=payload, headers=self._headers
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise translate_status(_as_httpx(response, raw), self.provider)
                async for delta in self._read_events(_lines(response), messages):
                    yield delta
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate_aiohttp(exc, self.provider) from exc

    async def _read_events(
        self, lines: AsyncIterator[str], messages: Sequence[Message]
    ) -> AsyncIterator[ChatDelta]:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        model = self.name
        done = False
        async for line in lines:
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
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The response body as text lines, as they arrive."""
    async for raw in response.content:
        yield raw.decode("utf-8").rstrip("\r\n")


def _as_httpx(response: aiohttp.ClientResponse, body: bytes) -> httpx.Response:
    """An error response in the shape :func:`translate_status` reads."""
    return httpx.Response(response.status, headers=list(response.headers.items()), content=body)


def _translate_aiohttp(exc: BaseException, provider: str) -> ProviderError:
    """The exception for a transport failure of the aiohttp session."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts (ServerTimeoutError) are TimeoutErrors
        return ProviderTimeout(f"{provider} timed out: {type(exc).__name__}", provider=provider)
    return ProviderUnavailable(f"{provider} connection failed: {exc!r}", provider=provider)
