"""Hostile content shown by the web UI, in headless Chromium: nothing executes, the CSP holds.

The model's answer carries ``<script>``, event-handler attributes and a ``javascript:`` link; a
document uploaded through the API has a title and text of the same kind, so the citation shown
under the answer carries them too. The page must show all of it as text: no element is made from
it, no handler runs (``window.__pwned`` stays unset, no dialog opens), and a script injected into
the page by other means is refused by the Content Security Policy (a ``securitypolicyviolation``
event, the script's side effect absent). The security headers of ``/ui`` are checked as sent.

Skipped without ``/usr/bin/chromium`` unless ``GENAI_REQUIRE_BROWSER=1`` (CI).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from genai_factory.config import Settings
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("GENAI_REQUIRE_BROWSER") == "1"
PAYLOAD = (
    "Pumps [1]. <script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'img'\">"
    "<svg onload=\"window.__pwned = 'svg'\"></svg>"
    "<a href=\"javascript:window.__pwned = 'link'\">click</a>"
    "<iframe srcdoc=\"<script>parent.__pwned = 'iframe'</script>\"></iframe>"
)
DOCUMENT = (
    "# Pumps <img src=x onerror=\"window.__pwned = 'title'\">\n\n"
    "Pumps move water <script>window.__pwned = 'excerpt'</script> through pipes "
    "<b onmouseover=\"window.__pwned = 'hover'\">fast</b>.\n"
)


def _browser_or_skip() -> None:
    reason = ""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed"
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"GENAI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": "fake-chat", "max_tokens": 200},
        embeddings={"provider": "fake"},
        # The answers are the fake model's, as written (no source sentence replaces them).
        rag={"knowledge_dirs": [], "min_score": 0.0, "extract_on_decline": False},
        auth={"enabled": True, "key_cache_s": 0},
        safety={"enabled": False},
        observability={"access_log": False},
    )
    record, key = new_key("web-user")

    async def add() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            await SqlKeyStore(engine).add(record)
        finally:
            engine.dispose()

    asyncio.run(add())
    app = create_app(settings, model=FakeChatModel([PAYLOAD] * 3), embedder=FakeEmbedder())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        uploaded = httpx.post(
            f"{base_url}/v1/documents",
            files={"file": ("pumps.md", DOCUMENT.encode(), "text/markdown")},
            headers={"authorization": f"Bearer {key}"},
        )
        assert uploaded.status_code == 201, uploaded.text
        yield base_url, key
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_ui_sends_its_security_headers(service: tuple[str, str]) -> None:
    base_url, _ = service
    for path in ("/ui", "/ui/ops", "/ui/assets/chat.js"):
        headers = httpx.get(f"{base_url}{path}").headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


def test_html_in_answers_and_citations_is_shown_as_text(service: tuple[str, str]) -> None:
    _browser_or_skip()
    from playwright.sync_api import expect, sync_playwright

    base_url, key = service
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{base_url}/ui")
            page.evaluate(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.__violations.push(e.violatedDirective));"
            )
            page.fill("#api-key", key)
            page.click("#key-form button[type=submit]")
            page.fill("#query", "How do pumps move water?")
            page.click("#ask")
            answer = page.locator("[data-testid=answer]")
            expect(answer).not_to_have_class("streaming", timeout=20_000)
            expect(answer).to_contain_text("<script>window.__pwned = 'script'</script>")
            citations = page.locator("[data-testid=citation]")
            expect(citations.first).to_contain_text("<img src=x", timeout=10_000)
            page.hover("[data-testid=citation]")
            page.hover("[data-testid=answer]")
            # Nothing made of the payload became an element.
            made = page.evaluate(
                "() => document.querySelectorAll("
                "'[data-testid=answer] *, [data-testid=citation] img,"
                " [data-testid=citation] script, [data-testid=citation] b, iframe, svg img').length"
            )
            assert made == 0
            # A script injected by other means is refused by the CSP.
            page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = \"window.__pwned = 'injected'\"; document.body.appendChild(s); }"
            )
            page.wait_for_function("() => window.__violations.length > 0", timeout=5_000)
            assert page.evaluate("() => window.__pwned") is None
            assert "script-src-elem" in page.evaluate("() => window.__violations")[0] or (
                "script-src" in page.evaluate("() => window.__violations")[0]
            )
            assert dialogs == []
        finally:
            browser.close()
