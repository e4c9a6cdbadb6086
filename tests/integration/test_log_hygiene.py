"""No API key and no personal data in the service's log, after a full run of ``genai-factory serve``.

The service runs as its own process at log level ``debug`` with the access log and the guards on.
The run creates a key through the admin API (its plaintext is in the response), authenticates with
``Authorization`` and ``X-API-Key``, presents unknown and revoked keys, sends questions holding an
e-mail address, a phone number, a card number and an IBAN (to both question routes, in a session,
streamed and not), uploads a document holding them, rates an answer, and provokes 4xx refusals of
every kind. Then the whole log is searched for every key secret and every personal value.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

pytestmark = pytest.mark.integration

RUNNER = Path(__file__).resolve().parents[2] / "bench" / "crash_safety.py"
PII = [
    "jane.roe@example.org",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "GB82WEST12345698765432",
]
QUESTION = (
    f"My e-mail is {PII[0]}, call me on {PII[1]}, charge card {PII[2]}, "
    f"IBAN {PII[3]}. How do I configure a fallback model?"
)


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_safety", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _exercise(base_url: str, key: str, admin: str) -> list[str]:
    """Drive the service; returns every secret it saw."""
    secrets = [key, admin]
    user = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        made = client.post(
            "/v1/admin/keys",
            json={"name": "made-here", "rpm": 1000},
            headers={"authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        created = made.json()["key"]
        secrets.append(created)
        for route, body in [
            ("/v1/assistant/generate", {"query": QUESTION, "mode": "chat", "session_id": "s1"}),
            ("/v1/assistant/generate", {"query": QUESTION, "mode": "rag", "stream": True}),
            (
                "/v1/chat/completions",
                {"model": "fake-priced", "messages": [{"role": "user", "content": QUESTION}]},
            ),
        ]:
            answered = client.post(route, json=body, headers=user)
            assert answered.status_code == 200, answered.text
        answered = client.post(
            "/v1/assistant/generate",
            json={"query": QUESTION, "mode": "chat"},
            headers={"x-api-key": created},
        )
        assert answered.status_code == 200, answered.text
        trace_id = answered.json()["trace_id"]
        assert (
            client.post(
                "/v1/feedback",
                json={"trace_id": trace_id, "rating": 1, "comment": QUESTION},
                headers={"x-api-key": created},
            ).status_code
            == 201
        )
        upload = client.post(
            "/v1/documents",
            files={
                "file": ("contacts.md", f"# Contacts\n\n{QUESTION}\n".encode(), "text/markdown")
            },
            headers=user,
        )
        assert upload.status_code == 201, upload.text
        made_id = made.json()["record"]["id"]
        client.delete(f"/v1/admin/keys/{made_id}", headers={"authorization": f"Bearer {admin}"})
        refusals = [
            client.post(
                "/v1/assistant/generate", json={"query": QUESTION}, headers={"x-api-key": created}
            ),
            client.post(
                "/v1/assistant/generate",
                json={"query": QUESTION},
                headers={"authorization": f"Bearer {key}x"},
            ),
            client.post(
                "/v1/assistant/generate", json={"query": QUESTION, "bogus": 1}, headers=user
            ),
            client.post(
                "/v1/assistant/generate",
                content=QUESTION.encode(),
                headers={**user, "content-type": "application/json"},
            ),
            client.get("/v1/admin/keys", headers=user),
            client.get(f"/v1/sessions/{QUESTION[:40]}", headers=user),
        ]
        assert all(400 <= r.status_code < 500 for r in refusals), [r.status_code for r in refusals]
    return secrets


def test_no_key_or_personal_data_in_the_log(tmp_path: Path) -> None:
    runner = _runner()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stores = runner.Stores(f"sqlite:///{data_dir / 'gateway.db'}")
    _, key = runner._add_key(stores.database_url, 100.0)
    admin_record, admin = runner.new_key("ops", admin=True)

    import asyncio

    async def add_admin() -> None:
        engine = await asyncio.to_thread(runner.open_engine, stores.database_url)
        try:
            await runner.SqlKeyStore(engine).add(admin_record)
        finally:
            engine.dispose()

    asyncio.run(add_admin())
    log_path = tmp_path / "service.log"
    service = runner.Service(
        data_dir,
        stores,
        log_path,
        {
            "GENAI_LOG_LEVEL": "debug",
            "GENAI_OBSERVABILITY__ACCESS_LOG": "true",
            "GENAI_SAFETY__ENABLED": "true",
        },
    )
    service.start()
    try:
        secrets = _exercise(service.base_url, key, admin)
    finally:
        service.stop()
    log = log_path.read_text(errors="replace")
    assert "/v1/assistant/generate" in log and "/v1/admin/keys" in log, log[-2000:]  # it did log
    for secret in secrets:
        # The secret part (gf_<id>_<secret>; the prefix and id are public). The secret is URL-safe
        # base64 and may itself hold "_", so it is cut after the id, not at the last "_".
        tail = secret.split("_", 2)[2]
        assert len(tail) == 43, secret
        assert tail not in log, "an API key secret is in the log"
    leaked = [value for value in PII if value in log or value.replace(" ", "") in log]
    assert leaked == [], f"personal data in the log: {leaked}"
