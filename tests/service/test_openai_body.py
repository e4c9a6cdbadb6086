"""``/v1/chat/completions`` reads its body itself (validated from the JSON bytes): a malformed body
gets the 422 (or 400) FastAPI gives a body parameter, and the OpenAPI document still describes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Settings
from genai_factory.service.app import create_app

JSON = "application/json"
GOOD = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
NOT_A_DICT = "Input should be a valid dictionary or object to extract fields from"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data: Path = tmp_path_factory.mktemp("body") / "data"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        llm={"provider": "fake", "model": "m", "max_tokens": 64},
        embeddings={"provider": "fake"},
        rag={"knowledge_dirs": []},
        auth={"enabled": False},
        observability={"access_log": False},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        for _ in range(200):
            if test_client.get("/readyz").json().get("ready"):
                break
            time.sleep(0.05)
        yield test_client


@pytest.mark.parametrize(
    ("body", "content_type", "details"),
    [
        (b"", JSON, [("", "Field required")]),
        (b"{", JSON, [("1", "JSON decode error")]),
        (b"[]", JSON, [("", NOT_A_DICT)]),
        (b"null", JSON, [("", NOT_A_DICT)]),
        (GOOD, "text/plain", [("", NOT_A_DICT)]),
        (GOOD, None, [("", NOT_A_DICT)]),
        (b'{"model": "x"}', JSON, [("messages", "Field required")]),
        (
            b'{"model": "", "messages": []}',
            JSON,
            [
                ("model", "String should have at least 1 character"),
                ("messages", "List should have at least 1 item after validation, not 0"),
            ],
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5",'
            b' "temperature": 9}',
            JSON,
            [
                ("max_tokens", "Input should be a valid integer"),
                ("temperature", "Input should be less than or equal to 2"),
            ],
        ),
        (
            b'{"a": NaN}',
            "application/json; charset=utf-8",
            [("model", "Field required"), ("messages", "Field required")],
        ),
    ],
)
def test_a_malformed_body_gets_the_framework_422(
    client: TestClient, body: bytes, content_type: str | None, details: list[tuple[str, str]]
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [(d["field"], d["message"]) for d in error["details"]] == details


def test_a_body_that_is_not_text_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions", content=b"\xff\xfe{", headers={"content-type": JSON}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "There was an error parsing the body"


@pytest.mark.parametrize("content_type", [JSON, "application/vnd.api+json", "Application/JSON"])
def test_a_json_body_is_answered(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/v1/chat/completions", content=GOOD, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: hi"


def test_openapi_still_describes_the_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/chat/completions"]["post"]
    assert operation["requestBody"] == {
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
        "required": True,
    }
    assert operation["responses"]["422"]["content"][JSON]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    schemas = spec["components"]["schemas"]
    request = schemas["ChatCompletionRequest"]
    assert {"model", "messages"} <= set(request["required"])
    assert request["properties"]["messages"]["items"] == {
        "$ref": "#/components/schemas/ChatMessageIn"
    }
    assert "ChatMessageIn" in schemas
    assert "TextPart" in schemas


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_json_nested_too_deep_is_a_400(client: TestClient, depth: int) -> None:
    body = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/chat/completions", content=body, headers={"content-type": JSON})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "There was an error parsing the body"


def test_json_nested_deeper_than_the_fast_parser_takes_is_validated(client: TestClient) -> None:
    depth = 300  # past the fast parser's limit, within json.loads's: a 422 as before
    body = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/chat/completions", content=body, headers={"content-type": JSON})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"].startswith("messages.0")
