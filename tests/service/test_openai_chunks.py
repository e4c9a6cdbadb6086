"""The streamed chunks of ``/v1/chat/completions``: a content chunk spliced into its template is
byte for byte the chunk pydantic renders."""

from __future__ import annotations

import json

import pytest

from genai_factory.service.openai_schemas import ChunkDelta
from genai_factory.service.routes.openai_compat import _Chunks

TEXTS = [
    "hello",
    "",
    'quotes " and \\ backslashes',
    "lines\nand\ttabs\r",
    "control \x00 \x01 \x1f \x7f",
    "non-ASCII: é ü 中文 😀 \u2028 \u2029",
    '"content":"" inside the text',
    "</script>",
]


@pytest.mark.parametrize("text", TEXTS)
def test_content_chunk_is_the_rendered_chunk(text: str) -> None:
    chunks = _Chunks("trace", "model-a", include_usage=False)
    spliced = chunks._content(text)
    assert spliced == chunks._chunk(ChunkDelta(content=text))
    payload = json.loads(spliced.removeprefix(b"data: ").removesuffix(b"\n\n"))
    assert payload["choices"][0]["delta"] == {"content": text}
    assert payload["id"] == "chatcmpl-trace"


def test_a_lone_surrogate_is_rendered_like_pydantic_does() -> None:
    chunks = _Chunks("trace", "model-a", include_usage=False)
    text = "bad \ud800 half"
    try:
        expected: bytes | type[Exception] = chunks._chunk(ChunkDelta(content=text))
    except Exception as exc:  # pydantic refuses it: so must the splice
        expected = type(exc)
    if isinstance(expected, bytes):
        assert chunks._content(text) == expected
    else:
        with pytest.raises(expected):
            chunks._content(text)
