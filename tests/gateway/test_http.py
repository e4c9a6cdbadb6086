"""The gateway through the HTTP API: 401, 403, 429 and 402 bodies, Retry-After, auth modes, ledger."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genai_factory.config import Price, Settings
from genai_factory.exceptions import ConfigurationError
from genai_factory.gateway.pricing import cost_usd
from genai_factory.llm.tokens import estimate_prompt_tokens
from genai_factory.rag.prompting import build_chat_messages
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

from .conftest import PRICED_MODEL, add_key, priced_settings

GENERATE = "/v1/assistant/generate"
QUERY = {"query": "What does the gateway do?", "mode": "chat", "max_tokens": 20}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def worst_case(settings: Settings) -> tuple[int, float]:
    """Worst-case tokens and USD of one QUERY through the chat route."""
    messages = build_chat_messages(QUERY["query"], system_prompt=settings.service.system_prompt)
    prompt = estimate_prompt_tokens(messages)
    price = Price(input_per_million=1000, output_per_million=2000)
    return prompt + 20, cost_usd(price, prompt, 20)


def started(settings: Settings) -> TestClient:
    app = create_app(settings, model=FakeChatModel(name=PRICED_MODEL), embedder=FakeEmbedder())
    return TestClient(app)


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.01)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with started(settings) as running:
        wait_ready(running)
        yield running


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and len(error["trace_id"]) == 32
    return error


def test_requests_without_a_key_get_401_with_a_hint(client: TestClient) -> None:
    response = client.post(GENERATE, json=QUERY)
    error = error_of(response, 401, "unauthenticated")
    assert "Authorization: Bearer" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer not-a-key"},
        {"authorization": "Bearer gf_0123456789ab_" + "x" * 43},
        {"x-api-key": "gf_0123456789ab_" + "x" * 43},
        {"authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_bad_keys_get_401(client: TestClient, headers: dict[str, str]) -> None:
    error_of(client.post(GENERATE, json=QUERY, headers=headers), 401, "unauthenticated")


def test_probes_stay_open_and_everything_else_is_guarded(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/no/such/route").status_code == 401


def test_a_valid_key_is_served_and_its_spend_recorded(
    client: TestClient, settings: Settings
) -> None:
    _, key = add_key(settings.gateway_database_url(), rpm=100, tpm=100_000, budget_usd=5.0)
    _, admin = add_key(settings.gateway_database_url(), name="ops", admin=True)
    for headers in (bearer(key), {"x-api-key": key}):
        response = client.post(GENERATE, json=QUERY, headers=headers)
        assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == PRICED_MODEL and answer["usage"]["cost_usd"] > 0

    rows = client.get("/v1/admin/spend", headers=bearer(admin)).json()
    assert len(rows) == 2
    latest = rows[0]
    assert latest["trace_id"] == answer["trace_id"]
    assert latest["actual_usd"] == pytest.approx(answer["usage"]["cost_usd"])
    assert latest["reserved_usd"] == pytest.approx(worst_case(settings)[1])
    assert latest["reserved_usd"] >= latest["actual_usd"]
    assert latest["prompt_tokens"] == answer["usage"]["prompt_tokens"]
    assert latest["status"] == "ok" and latest["model"] == PRICED_MODEL


def test_revoked_keys_get_401(client: TestClient, settings: Settings) -> None:
    record, key = add_key(settings.gateway_database_url())
    _, admin = add_key(settings.gateway_database_url(), name="ops", admin=True)
    assert client.post(GENERATE, json=QUERY, headers=bearer(key)).status_code == 200
    assert client.delete(f"/v1/admin/keys/{record.id}", headers=bearer(admin)).status_code == 200
    error = error_of(client.post(GENERATE, json=QUERY, headers=bearer(key)), 401, "unauthenticated")
    assert "revoked" in error["message"]
    error_of(client.delete(f"/v1/admin/keys/{record.id}", headers=bearer(admin)), 404, "not_found")


def test_admin_endpoints_need_an_admin_key(client: TestClient, settings: Settings) -> None:
    _, user = add_key(settings.gateway_database_url())
    error_of(client.get("/v1/admin/keys"), 401, "unauthenticated")
    error = error_of(client.get("/v1/admin/keys", headers=bearer(user)), 403, "permission_denied")
    assert "not an admin key" in error["message"]
    error_of(
        client.post("/v1/admin/keys", json={"name": "x"}, headers=bearer(user)),
        403,
        "permission_denied",
    )


def test_admins_manage_keys_over_http(client: TestClient, settings: Settings) -> None:
    _, admin = add_key(settings.gateway_database_url(), name="ops", admin=True)
    created = client.post(
        "/v1/admin/keys", json={"name": "app", "rpm": 5, "budget_usd": 1.5}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("gf_") and body["record"]["rpm"] == 5
    assert "key_hash" not in body["record"]
    assert body["record"]["created_at"].endswith("+00:00")  # times carry their zone
    assert client.post(GENERATE, json=QUERY, headers=bearer(body["key"])).status_code == 200
    listed = client.get("/v1/admin/keys", headers=bearer(admin)).json()
    assert {k["name"] for k in listed} == {"ops", "app"}
    assert all("key_hash" not in k for k in listed)
    assert body["key"] not in client.get("/v1/admin/keys", headers=bearer(admin)).text


@pytest.mark.parametrize(
    "fields",
    [
        {"tpm": 9223372036854775808},
        {"rpm": 2**31},
        {"rpm": 1.5},
        {"tpm": "100"},
        {"budget_usd": False},
        {"budget_usd": 1e300},
        {"budget_usd": -1},
    ],
)
def test_out_of_range_key_limits_are_refused_with_422(
    client: TestClient, settings: Settings, fields: dict[str, object]
) -> None:
    _, admin = add_key(settings.gateway_database_url(), name="ops", admin=True)
    response = client.post("/v1/admin/keys", json={"name": "app", **fields}, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_requests_per_minute_give_429_with_retry_after(
    client: TestClient, settings: Settings
) -> None:
    _, key = add_key(settings.gateway_database_url(), rpm=3)
    statuses = [
        client.post(GENERATE, json=QUERY, headers=bearer(key)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    response = client.post(GENERATE, json=QUERY, headers=bearer(key))
    error = error_of(response, 429, "rate_limit_exceeded")
    assert "3 requests per minute" in error["message"]
    assert 55 <= int(response.headers["retry-after"]) <= 60
    # Other keys are not affected.
    _, other = add_key(settings.gateway_database_url(), rpm=3)
    assert client.post(GENERATE, json=QUERY, headers=bearer(other)).status_code == 200


def test_tokens_per_minute_give_429_then_400_when_they_can_never_fit(
    client: TestClient, settings: Settings
) -> None:
    tokens, _ = worst_case(settings)
    _, key = add_key(settings.gateway_database_url(), tpm=tokens)
    assert client.post(GENERATE, json=QUERY, headers=bearer(key)).status_code == 200
    response = client.post(GENERATE, json=QUERY, headers=bearer(key))
    error = error_of(response, 429, "rate_limit_exceeded")
    assert f"may use up to {tokens}" in error["message"]
    assert int(response.headers["retry-after"]) >= 1

    _, tiny = add_key(settings.gateway_database_url(), tpm=10)
    error = error_of(
        client.post(GENERATE, json=QUERY, headers=bearer(tiny)), 400, "invalid_request"
    )
    assert "lower max_tokens" in error["message"]


def test_budgets_refuse_with_402_and_say_why(client: TestClient, settings: Settings) -> None:
    _, usd = worst_case(settings)
    _, key = add_key(settings.gateway_database_url(), budget_usd=usd, budget_period="day")
    assert client.post(GENERATE, json=QUERY, headers=bearer(key)).status_code == 200
    response = client.post(GENERATE, json=QUERY, headers=bearer(key))
    error = error_of(response, 402, "budget_exceeded")
    assert "daily budget" in error["message"] and "resets at" in error["message"]
    assert "retry-after" not in response.headers


def test_budgeted_keys_are_refused_for_unpriced_models(tmp_path: Path) -> None:
    settings = priced_settings(
        tmp_path,
        llm={"provider": "openai_compatible", "base_url": "http://127.0.0.1:9", "model": "remote"},
    )
    _, budgeted = add_key(settings.gateway_database_url(), budget_usd=1.0)
    with started(settings) as client:
        wait_ready(client)
        error = error_of(
            client.post(GENERATE, json=QUERY, headers=bearer(budgeted)), 500, "configuration_error"
        )
        assert "remote" not in error["message"]  # the details go to the log, not the caller


def test_auto_auth_is_off_on_loopback_without_keys(tmp_path: Path) -> None:
    settings = priced_settings(tmp_path, auth={"enabled": "auto"})
    with started(settings) as client:
        wait_ready(client)
        assert client.app.state.gateway.enforcing is False  # type: ignore[attr-defined]
        assert client.post(GENERATE, json=QUERY).status_code == 200
        error_of(client.get("/v1/admin/keys"), 401, "unauthenticated")  # admin always needs a key


def test_auto_auth_is_on_once_a_key_exists(tmp_path: Path) -> None:
    settings = priced_settings(tmp_path, auth={"enabled": "auto"})
    _, key = add_key(settings.gateway_database_url())
    with started(settings) as client:
        wait_ready(client)
        error_of(client.post(GENERATE, json=QUERY), 401, "unauthenticated")
        assert client.post(GENERATE, json=QUERY, headers=bearer(key)).status_code == 200


def test_auto_auth_is_on_for_public_addresses_even_without_keys(tmp_path: Path) -> None:
    settings = priced_settings(tmp_path, auth={"enabled": "auto"}, service={"host": "0.0.0.0"})
    with started(settings) as client:
        wait_ready(client)
        error_of(client.post(GENERATE, json=QUERY), 401, "unauthenticated")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.org"])
def test_auth_off_refuses_to_start_on_public_addresses(tmp_path: Path, host: str) -> None:
    settings = priced_settings(tmp_path, auth={"enabled": False}, service={"host": host})
    with pytest.raises(ConfigurationError, match="loopback"):
        create_app(settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_auth_off_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    settings = priced_settings(tmp_path, auth={"enabled": False}, service={"host": host})
    add_key(settings.gateway_database_url())  # explicitly off wins over existing keys
    with started(settings) as client:
        wait_ready(client)
        assert client.post(GENERATE, json=QUERY).status_code == 200
