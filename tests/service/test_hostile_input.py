"""A catalogue of hostile input, auth on: every item is refused or neutralised, never a 5xx.

Categories: deeply nested JSON, invalid UTF-8, NUL and control characters, bad ``max_tokens``,
unknown fields, compressed bodies and archives, PDF decompression bombs, malformed PDFs and HTML,
and path traversal in uploaded file names. No body carries a stack trace. The counts per category
are in ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import resource
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.service import create_app
from genai_factory.testing.documents import compressed_pdf, minimal_pdf
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

GENERATE = "/v1/assistant/generate"
COMPLETIONS = "/v1/chat/completions"
DOCUMENTS = "/v1/documents"
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', '.py", line ')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """One service for the whole catalogue (auth on, the fake model, no knowledge base)."""
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        llm={"provider": "fake", "model": "fake-chat", "max_tokens": 32},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": [], "max_upload_bytes": 2_000_000},
        auth={"enabled": True, "key_cache_s": 0},
        observability={"access_log": False},
    )
    record, key = new_key("hostile", rpm=100_000, tpm=100_000_000)

    async def add() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(add())
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app, headers={"authorization": f"Bearer {key}"}) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield client, data_dir


@pytest.fixture
def client(served: tuple[TestClient, Path]) -> TestClient:
    return served[0]


def _clean(response: httpx.Response, *allowed: int) -> None:
    """Not a 5xx, one of ``allowed``, no stack trace; an error has the service's error shape."""
    assert response.status_code < 500, response.text[:500]
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    assert not any(marker in response.text for marker in TRACE_MARKERS), response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"] and len(error["trace_id"]) == 32


def _raw_json(client: TestClient, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


# -- deeply nested JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
@pytest.mark.parametrize("path", [GENERATE, COMPLETIONS, "/v1/feedback", "/v1/admin/keys"])
def test_deeply_nested_json_is_refused(client: TestClient, path: str, depth: int) -> None:
    body = b'{"query": "hi", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    _clean(_raw_json(client, path, body), 400, 403, 422)


def test_deeply_nested_objects_are_refused(client: TestClient) -> None:
    body = b'{"query": "hi", "metadata": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
    _clean(_raw_json(client, GENERATE, body), 400, 422)


# -- invalid UTF-8, NUL and control characters -----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "\xff\xfe\xfd"}',
        b'{"query": "caf\xc3"}',
        b'{"query": "\xed\xa0\x80 lone surrogate"}',
        b"\xef\xbb\xbf" + b'{"query": "bom"}',
        b'{"query": "\\ud800 escaped lone surrogate"}',
        b'{"query": "nul \x00 raw"}',
    ],
)
def test_invalid_utf8_and_raw_control_bytes_are_refused_or_served(
    client: TestClient, body: bytes
) -> None:
    _clean(_raw_json(client, GENERATE, body), 200, 400, 422)


@pytest.mark.parametrize(
    "text",
    [
        "nul \u0000 inside",
        "bell \u0007 escape \u001b[31m red \u001b[0m",
        "right-to-left \u202e override \u2066",
        "zero width \u200b\u200c\u200d\ufeff",
        "\u0000" * 50,
        "line\r\nbreaks\u2028\u2029",
        "emoji \U0001f600 and \U000e0041 tags",
    ],
)
def test_nul_and_control_characters_are_served(client: TestClient, text: str) -> None:
    generate = client.post(GENERATE, json={"query": text, "mode": "chat"})
    _clean(generate, 200, 400)
    chat = client.post(
        COMPLETIONS, json={"model": "fake-chat", "messages": [{"role": "user", "content": text}]}
    )
    _clean(chat, 200, 400)


# -- max_tokens and unknown fields -----------------------------------------------------------


@pytest.mark.parametrize(
    "value", [10**30, 2**63, 2**31, -1, 0, -(2**63), 1.5, "12x", True, [], {}, None, 1e308]
)
@pytest.mark.parametrize("path", [GENERATE, COMPLETIONS])
def test_bad_max_tokens_are_422(client: TestClient, path: str, value: Any) -> None:
    body: dict[str, Any] = {"max_tokens": value}
    if path == GENERATE:
        body["query"] = "hello"
    else:
        body["model"], body["messages"] = "fake-chat", [{"role": "user", "content": "hello"}]
    response = client.post(path, json=body)
    if value is None:  # the default applies
        _clean(response, 200)
    else:
        _clean(response, 422)


def test_huge_float_and_nan_in_raw_json_are_refused(client: TestClient) -> None:
    for raw in (b"1e400", b"NaN", b"Infinity", b"-Infinity", b"9" * 5000):
        body = b'{"query": "hello", "max_tokens": ' + raw + b"}"
        _clean(_raw_json(client, GENERATE, body), 400, 422)


def test_unknown_fields_are_refused_by_the_native_api_and_ignored_by_the_openai_one(
    client: TestClient,
) -> None:
    _clean(client.post(GENERATE, json={"query": "hi", "__proto__": {"admin": True}}), 422)
    _clean(client.post("/v1/admin/keys", json={"name": "x", "admin": True, "god": 1}), 403, 422)
    openai = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "hi"}],
        "logit_bias": {"1": 1},
    }
    _clean(client.post(COMPLETIONS, json=openai), 200)


# -- compressed bodies, archives and bombs ----------------------------------------------------


def test_a_gzip_bomb_body_is_not_inflated(client: TestClient) -> None:
    bomb = gzip.compress(b'{"query": "' + b"A" * 50_000_000 + b'"}', 9)
    assert len(bomb) < 100_000
    response = client.post(
        GENERATE,
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    _clean(response, 400, 415, 422)


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.md", b"A" * 50_000_000)
    return out.getvalue()


def test_archives_are_refused_unopened(client: TestClient) -> None:
    bomb = _zip_bomb()
    for name in ("bomb.zip", "bomb.tar.gz", "bomb.md.gz"):
        response = client.post(DOCUMENTS, files={"file": (name, bomb, "application/zip")})
        _clean(response, 415)
    # An archive's bytes under a text name are read as (binary) text, never unpacked.
    response = client.post(DOCUMENTS, files={"file": ("bomb.md", bomb, "text/markdown")})
    _clean(response, 200, 201, 422)
    if response.status_code in (200, 201):
        assert response.json()["document"]["chars"] < 1_000_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_pdf_bomb_over_many_streams_stays_bounded(client: TestClient) -> None:
    stream = b"BT (" + b"A" * 40_000_000 + b") Tj ET"  # 40 MB per page from ~40 kB
    bomb = compressed_pdf([stream] * 14)
    assert len(bomb) < 1_500_000
    before = _peak_rss_mb()
    started = time.monotonic()
    response = client.post(DOCUMENTS, files={"file": ("bomb.pdf", bomb, "application/pdf")})
    elapsed = time.monotonic() - started
    _clean(response, 200, 201, 422)
    assert elapsed < 30, elapsed
    # 14 x 40 MB inflated whole would raise the peak by far more than this.
    assert _peak_rss_mb() - before < 300


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n",
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF",
        b"%PDF-1.7\n" + b"\x00\xff" * 5000,
        minimal_pdf([["Valves stop water."]])[:-40],
        minimal_pdf([["Valves"]]).replace(b"/Count 1", b"/Count 999999999"),
        minimal_pdf([["Valves"]]).replace(b"2 0 R", b"1 0 R"),  # a cycle
        b"not a pdf at all",
    ],
    ids=["header-only", "no-xref", "garbage", "truncated", "huge-count", "cycle", "not-pdf"],
)
def test_malformed_pdfs_are_refused_or_read(client: TestClient, data: bytes) -> None:
    started = time.monotonic()
    response = client.post(DOCUMENTS, files={"file": ("broken.pdf", data, "application/pdf")})
    _clean(response, 200, 201, 422)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "html",
    [
        b"<html><body><p>unterminated <div><b><i>",
        b"<div>" * 100_000 + b"deep" + b"</div>" * 3,
        b"<p>a</p><script>alert(document.cookie)</script><style>*{}</style><p>b</p>",
        b"<!-- never closed <p>hidden",
        b"<p>&#xFFFFFFFF; &#0; &bogus; &amp</p><<<>>></p>",
        b"<p>\x00\x01\x02 bytes \xff\xfe</p>",
        b"<svg onload=alert(1)><img src=x onerror=alert(1)>caption</svg>",
    ],
    ids=["unterminated", "deep", "script", "open-comment", "entities", "bytes", "handlers"],
)
def test_malformed_html_is_read_without_its_scripts(client: TestClient, html: bytes) -> None:
    started = time.monotonic()
    response = client.post(DOCUMENTS, files={"file": ("page.html", html, "text/html")})
    _clean(response, 200, 201, 422)
    assert time.monotonic() - started < 20
    if response.status_code == 201:
        document_id = response.json()["document"]["id"]
        found = client.post(GENERATE, json={"query": "alert document cookie", "mode": "rag"}).json()
        excerpts = " ".join(c["excerpt"] for c in found.get("citations", []))
        assert "alert(document.cookie)" not in excerpts
        client.delete(f"{DOCUMENTS}/{document_id}")


# -- path traversal in uploaded file names ----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/passwd.md",
        "..\\..\\..\\windows\\win.md",
        "/etc/cron.d/evil.md",
        "a/../../b/../../escape.md",
        "....//....//dots.md",
        "%2e%2e%2fencoded.md",
        "nul\x00byte.md",
        "C:\\temp\\drive.md",
    ],
)
def test_traversal_names_write_nothing_outside_the_data_directory(
    served: tuple[TestClient, Path], name: str, tmp_path: Path
) -> None:
    client, data_dir = served
    marker = f"traversal marker {abs(hash(name))}"
    response = client.post(DOCUMENTS, files={"file": (name, marker.encode(), "text/markdown")})
    _clean(response, 200, 201, 415, 422)
    root = data_dir.parent.parent
    written = [
        path
        for path in root.rglob("*")
        if path.is_file()
        and not path.is_relative_to(data_dir)
        and path.stat().st_size < 10_000
        and marker.encode() in path.read_bytes()
    ]
    assert written == []
    if response.status_code in (200, 201):
        source = response.json()["document"]["source"]
        assert source.startswith("upload/")
        assert json.dumps(source)  # representable
        client.delete(f"{DOCUMENTS}/{response.json()['document']['id']}")
