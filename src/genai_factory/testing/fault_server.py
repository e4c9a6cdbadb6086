"""A fault-injecting OpenAI-compatible HTTP/1.1 server for tests, on plain asyncio streams.

It serves ``POST /v1/chat/completions`` (JSON, or server-sent events when ``"stream": true``, with a
final usage chunk and ``data: [DONE]``) and ``POST /v1/embeddings`` on 127.0.0.1 at an ephemeral
port. Each request takes the next :class:`Fault` from the script, else ``default``::

    with FaultServer(model="primary") as server:       # own thread and event loop
        server.script(Fault.status(429, retry_after=1), Fault.status(500), Fault.ok("hi"))
        server.script(Fault.calls_tools(("calculator", {"expression": "2+2"})))  # native tool call
        ...  # point OpenAICompatibleModel at server.base_url
        assert server.requests[1].received_at - server.requests[0].responded_at >= 1.0

``async with FaultServer() as server:`` runs it on the current event loop instead. Every request is
recorded (method, path, headers, JSON body, fault, when received, when answered) in ``requests``.
HTTP is written by hand so faults land precisely: a status with ``Retry-After``, a hang until the
server stops, a connection reset (``SO_LINGER`` 0), a slow stream, a stream cut mid-way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Self

FaultKind = Literal["ok", "status", "hang", "reset", "break"]
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"


@dataclass(frozen=True)
class Fault:
    """How the server answers one request. Build one with the class methods."""

    kind: FaultKind = "ok"
    text: str | None = None
    status_code: int = 200
    retry_after: str | None = None
    message: str = ""
    delay_s: float = 0.0
    break_after: int = 0
    tool_calls: tuple[tuple[str, str], ...] = ()

    @classmethod
    def ok(cls, text: str | None = None, *, delay_s: float = 0.0) -> Fault:
        """A normal answer (``None``: echo the last user message).

        ``delay_s`` is waited before a JSON answer, or between the pieces of a streamed one.
        """
        return cls("ok", text=text, delay_s=delay_s)

    @classmethod
    def calls_tools(cls, *calls: tuple[str, Mapping[str, Any] | str]) -> Fault:
        """A (non-streamed) answer that asks to call tools: ``(name, arguments)`` pairs.

        ``arguments`` is sent as given when it is a string (so tests can send broken JSON),
        else as its JSON text. The answer has no content and ``finish_reason`` ``tool_calls``.
        """
        encoded = tuple(
            (name, args if isinstance(args, str) else json.dumps(args)) for name, args in calls
        )
        return cls("ok", text="", tool_calls=encoded)

    @classmethod
    def status(
        cls, code: int, *, retry_after: float | str | None = None, message: str | None = None
    ) -> Fault:
        """An HTTP error with an OpenAI-style JSON body and an optional ``Retry-After`` header."""
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)
        after = None if retry_after is None else str(retry_after)
        return cls(
            "status", status_code=code, retry_after=after, message=message or f"fault {code}"
        )

    @classmethod
    def hang(cls) -> Fault:
        """Read the request, never answer; the connection closes when the server stops."""
        return cls("hang")

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then reset the connection (RST, no response at all)."""
        return cls("reset")

    @classmethod
    def slow_stream(cls, text: str, *, delay_s: float) -> Fault:
        """Stream ``text`` word by word with ``delay_s`` between pieces."""
        return cls("ok", text=text, delay_s=delay_s)

    @classmethod
    def broken_stream(cls, text: str, *, after: int = 1, delay_s: float = 0.0) -> Fault:
        """Send the first ``after`` pieces of ``text``, then close the connection mid-body.

        A request without ``"stream": true`` gets half of its JSON body instead.
        """
        return cls("break", text=text, break_after=after, delay_s=delay_s)


@dataclass
class RecordedRequest:
    """One request the server read, and when (``time.monotonic()`` seconds)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: Fault
    received_at: float
    responded_at: float | None = None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


def split_pieces(text: str) -> list[str]:
    """The pieces a text is streamed in: each word with the whitespace after it."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    reason = next((s.phrase for s in HTTPStatus if s.value == status), "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(payload: object) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return _chunk(f"data: {text}\n\n".encode())


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultServer:
    """A scripted OpenAI-compatible server. ``default`` answers when the script is empty."""

    def __init__(
        self,
        *,
        model: str = "fault-model",
        default: Fault | None = None,
        embedding_dimension: int = 8,
        host: str = "127.0.0.1",
    ) -> None:
        self.model = model
        self.default = default or Fault.ok()
        self.embedding_dimension = embedding_dimension
        self.host = host
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._server: asyncio.Server | None = None
        self._closing: asyncio.Event | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:41234/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *faults: Fault) -> None:
        """Queue the answers to the next requests, in order."""
        self._faults.extend(faults)

    def requests_to(self, path: str = CHAT_PATH) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        """Listen on an ephemeral port of the running event loop."""
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, release hanging requests and close every connection."""
        if self._server is None or self._closing is None:
            return
        self._server.close()
        self._closing.set()
        for writer in self._connections.values():
            writer.transport.abort()  # blocked reads see EOF, writes fail: handlers end
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError):
            pass
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str], Any]:
        line = await reader.readline()
        if not line:
            raise ConnectionError("client closed the connection")
        method, path, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        data = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(data) if data else None
        except json.JSONDecodeError:
            body = None
        return method, path.split("?", 1)[0], headers, body

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        method, path, headers, body = await self._read_request(reader)
        if method != "POST" or path not in (CHAT_PATH, EMBEDDINGS_PATH):
            await self._send_json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        fault = self._faults.popleft() if self._faults else self.default
        record = RecordedRequest(method, path, headers, body, fault, time.monotonic())
        self.requests.append(record)
        keep_alive = await self._respond(record, writer)
        record.responded_at = time.monotonic()
        return keep_alive

    async def _respond(self, record: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        fault = record.fault
        if fault.kind == "hang":
            assert self._closing is not None
            await self._closing.wait()
            return False
        if fault.kind == "reset":
            _reset(writer)
            return False
        if fault.kind == "status":
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            error = {"message": fault.message, "type": "fault", "code": fault.status_code}
            await self._send_json(writer, fault.status_code, {"error": error}, extra)
            return True
        if record.stream and record.path == CHAT_PATH:
            return await self._send_stream(record, writer)
        await asyncio.sleep(fault.delay_s)
        if record.path == EMBEDDINGS_PATH:
            payload = self._embeddings(record.body)
        else:
            payload = self._completion(record.body, self._text(record), fault.tool_calls)
        await self._send_json(writer, 200, payload, cut=fault.kind == "break")
        return fault.kind != "break"

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: object,
        extra: list[tuple[str, str]] | None = None,
        cut: bool = False,
    ) -> None:
        """Send ``payload``; ``cut`` sends only half the body announced by Content-Length."""
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        writer.write(
            _head(status, headers + (extra or [])) + data[: len(data) // 2 if cut else None]
        )
        await writer.drain()

    async def _send_stream(self, record: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        fault = record.fault
        text = self._text(record)
        sse = [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]
        writer.write(_head(200, sse))
        for index, piece in enumerate(split_pieces(text)):
            if fault.kind == "break" and index >= fault.break_after:
                break
            if index and fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            writer.write(_event(self._stream_chunk({"content": piece}, None)))
            await writer.drain()
        if fault.kind == "break":
            await writer.drain()
            return False  # closed without the last chunk: an incomplete chunked body
        writer.write(_event(self._stream_chunk({}, "stop")))
        usage = self._usage(record.body, text)
        writer.write(_event({**self._stream_chunk({}, None), "choices": [], "usage": usage}))
        writer.write(_event("[DONE]") + _chunk(b""))
        await writer.drain()
        return True

    def _text(self, record: RecordedRequest) -> str:
        if record.fault.text is not None:
            return record.fault.text
        messages = record.body.get("messages", []) if isinstance(record.body, dict) else []
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        return f"echo: {users[-1] if users else ''}"

    def _usage(self, body: Any, text: str) -> dict[str, int]:
        messages = body.get("messages", []) if isinstance(body, dict) else []
        prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
        done = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}

    def _envelope(self, kind: str, **fields: Any) -> dict[str, Any]:
        created = int(time.time())
        return {"id": "fault-1", "object": kind, "created": created, "model": self.model, **fields}

    def _completion(
        self, body: Any, text: str, tool_calls: tuple[tuple[str, str], ...] = ()
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(tool_calls)
            ]
            finish = "tool_calls"
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return self._envelope("chat.completion", choices=[choice], usage=self._usage(body, text))

    def _stream_chunk(self, delta: dict[str, str], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._envelope("chat.completion.chunk", choices=[choice])

    def _embeddings(self, body: Any) -> dict[str, Any]:
        raw = body.get("input", []) if isinstance(body, dict) else []
        texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        rows = [{"index": i, "embedding": self._vector(t)} for i, t in enumerate(texts)]
        usage = {"prompt_tokens": sum(len(t.split()) for t in texts)}
        return self._envelope("list", data=rows, usage=usage)

    def _vector(self, text: str) -> list[float]:
        digest = hashlib.shake_256(text.encode("utf-8")).digest(self.embedding_dimension)
        return [byte / 127.5 - 1.0 for byte in digest]
