"""A minimal, fast OpenAI-compatible upstream for the gateway benchmark (``bench/gateway.py``).

Both gateways under test forward to this one server, so it must cost as little as possible: a raw
asyncio protocol (uvloop when installed) that parses just enough HTTP/1.1 (request line, headers,
``Content-Length`` body, keep-alive) to answer:

* ``POST /v1/chat/completions``: a fixed short completion with ``usage``; with ``"stream": true``
  the same answer as server-sent events (a few deltas, a usage chunk, ``[DONE]``);
* ``GET /v1/models``: the one model;
* anything else: 404.

Run it alone: ``python bench/stub_upstream.py --port 8101`` (prints ``listening on ...`` once ready).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import cast

ANSWER = "The circuit breaker fails fast while the backend is down."
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 12


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


def completion(model: str) -> bytes:
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }
    return _response("200 OK", json.dumps(body).encode())


def streamed(model: str) -> bytes:
    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        event = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "model": model}
        return "data: " + json.dumps({**event, "choices": [choice]}) + "\n\n"

    words = ANSWER.split(" ")
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    events.append(chunk({}, "stop"))
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
    events.append(
        "data: " + json.dumps({"id": "chatcmpl-stub", "choices": [], "usage": usage}) + "\n\n"
    )
    events.append("data: [DONE]\n\n")
    return _response("200 OK", "".join(events).encode(), "text/event-stream")


def models(model: str) -> bytes:
    card = {"id": model, "object": "model", "created": 0, "owned_by": "stub"}
    return _response("200 OK", json.dumps({"object": "list", "data": [card]}).encode())


NOT_FOUND = _response("404 Not Found", b'{"error": {"message": "not found"}}')
BAD_REQUEST = _response("400 Bad Request", b'{"error": {"message": "bad request"}}')


def answer(method: str, path: str, body: bytes, default_model: str) -> bytes:
    """The whole HTTP response for one request."""
    path = path.split("?", 1)[0]
    if method == "GET" and path.endswith("/models"):
        return models(default_model)
    if method != "POST" or not path.endswith("/chat/completions"):
        return NOT_FOUND
    try:
        request = json.loads(body)
    except ValueError:
        return BAD_REQUEST
    model = str(request.get("model") or default_model)
    return streamed(model) if request.get("stream") else completion(model)


class StubProtocol(asyncio.Protocol):
    """One client connection: parse pipelined requests from the buffer and answer each."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "connection":
                    close = value.strip().lower() == "close"
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            parts = lines[0].split(" ")
            if len(parts) < 2:
                self.transport.write(BAD_REQUEST)
                self.transport.close()
                return
            self.transport.write(answer(parts[0], parts[1], body, self.model))
            if close:
                self.transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, model: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StubProtocol(model), host, port, backlog=1024)
    print(f"listening on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--model", default="stub-model")
    args = parser.parse_args()
    try:
        import uvloop  # type: ignore[import-not-found]  # optional, faster

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port, args.model))


if __name__ == "__main__":
    main()
