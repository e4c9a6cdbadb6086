from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.messages import Chunk
from genai_factory.service import create_app
from genai_factory.testing.documents import minimal_pdf
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder


def _wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.02)


@pytest.fixture
def settings(fake_settings: Settings) -> Settings:
    rag = fake_settings.rag.model_copy(update={"knowledge_dirs": [], "max_upload_bytes": 2000})
    return fake_settings.model_copy(update={"rag": rag})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app) as test_client:
        _wait_ready(test_client)
        yield test_client


def _upload(client: TestClient, name: str, data: bytes, kind: str = "text/plain") -> object:
    return client.post("/v1/documents", files={"file": (name, data, kind)})


def test_upload_list_search_and_delete(client: TestClient) -> None:
    created = _upload(client, "pumps.md", b"# Pumps\n\nPumps move water through pipes.\n")
    assert created.status_code == 201, created.text  # type: ignore[attr-defined]
    body = created.json()  # type: ignore[attr-defined]
    assert body["status"] == "indexed" and body["version"]
    document = body["document"]
    assert document["title"] == "Pumps" and document["chunks"] == 1
    assert document["source"] == "upload/pumps.md" and document["metadata"]["type"] == "md"

    pdf = _upload(client, "valves.pdf", minimal_pdf([["Valves stop water."]]), "application/pdf")
    assert pdf.status_code == 201  # type: ignore[attr-defined]
    again = _upload(client, "pumps.md", b"# Pumps\n\nPumps move water through pipes.\n")
    assert again.status_code == 200 and again.json()["status"] == "unchanged"  # type: ignore[attr-defined]
    copy = _upload(client, "copy.md", b"# Pumps\n\nPumps move water through pipes.\n")
    assert copy.json()["status"] == "duplicate"  # type: ignore[attr-defined]
    assert copy.json()["duplicate_of"] == document["id"]  # type: ignore[attr-defined]

    listed = client.get("/v1/documents").json()
    assert listed["count"] == 2
    assert sorted(d["source"] for d in listed["documents"]) == [
        "upload/pumps.md",
        "upload/valves.pdf",
    ]

    deleted = client.delete(f"/v1/documents/{document['id']}")
    assert deleted.status_code == 200 and deleted.json() == {
        "id": document["id"],
        "deleted": True,
        "chunks": 1,
    }
    assert client.delete(f"/v1/documents/{document['id']}").status_code == 404
    assert client.get("/v1/documents").json()["count"] == 1


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("big.txt", b"word " * 1000, 413, "document_too_large"),
        ("sheet.xlsx", b"PK\x03\x04", 415, "unsupported_file_type"),
        ("empty.txt", b"", 422, "unreadable_document"),
        ("blank.md", b"   \n\n", 422, "unreadable_document"),
        ("broken.pdf", b"%PDF-1.4 nonsense", 422, "unreadable_document"),
        ("latin.txt", "caf\xe9".encode("latin-1"), 422, "unreadable_document"),
    ],
)
def test_refused_uploads_write_nothing(
    client: TestClient, name: str, data: bytes, status: int, code: str
) -> None:
    response = _upload(client, name, data)
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == code and error["type"] == "invalid_request_error"
    assert client.get("/v1/documents").json()["count"] == 0


def test_missing_file_field_is_a_422(client: TestClient) -> None:
    assert client.post("/v1/documents", data={"other": "x"}).status_code == 422


def test_a_failure_while_indexing_leaves_nothing_half_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from genai_factory.rag.keyword import KeywordIndex

    async def broken(self: KeywordIndex, chunks: list[Chunk]) -> None:
        raise OSError("disk full")

    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())
    with TestClient(app, raise_server_exceptions=False) as client:
        _wait_ready(client)
        monkeypatch.setattr(KeywordIndex, "add", broken)
        response = _upload(client, "notes.md", b"# Notes\n\nSome notes.\n")
        assert response.status_code == 500  # type: ignore[attr-defined]
        assert client.get("/v1/documents").json()["count"] == 0
        parts = app.state.components
        assert client.portal.call(parts.index.count) == 0  # type: ignore[union-attr]


def _add_key(settings: Settings, name: str, *, admin: bool = False) -> str:
    record, plaintext = new_key(name, admin=admin)

    async def work() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(work())
    return plaintext


def test_documents_belong_to_the_key_that_uploaded_them(settings: Settings) -> None:
    alice, bob = _add_key(settings, "alice"), _add_key(settings, "bob")
    admin = _add_key(settings, "ops", admin=True)
    app = create_app(settings, model=FakeChatModel(), embedder=FakeEmbedder())

    def upload(key: str, text: bytes) -> Any:
        files = {"file": ("notes.md", text, "text/markdown")}
        return client.post("/v1/documents", files=files, headers={"Authorization": f"Bearer {key}"})

    with TestClient(app) as client:
        _wait_ready(client)
        first = upload(alice, b"# Notes\n\nAlice wrote these notes.\n")
        assert first.status_code == 201, first.text
        doc_id = first.json()["document"]["id"]
        assert upload(bob, b"# Notes\n\nBob overwrites them.\n").status_code == 403
        bob_headers = {"Authorization": f"Bearer {bob}"}
        assert client.delete(f"/v1/documents/{doc_id}", headers=bob_headers).status_code == 403
        assert upload(alice, b"# Notes\n\nAlice edits her notes.\n").status_code == 201
        admin_headers = {"Authorization": f"Bearer {admin}"}
        assert client.delete(f"/v1/documents/{doc_id}", headers=admin_headers).status_code == 200
