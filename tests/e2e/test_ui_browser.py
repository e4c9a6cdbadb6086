"""The web UI end to end in headless Chromium (Debian's package) driven by Playwright.

The service runs under uvicorn in a background thread on an ephemeral 127.0.0.1 port, with auth on,
the fake model (streaming slowly, so the page is seen mid-answer) behind a circuit breaker, and the
fake embedder over the bundled user guide. The test types a question, watches the answer stream
in, checks the sources, rates the answer and finds the rating in the interaction log; then it opens
the operations page, is refused with the non-admin key, switches to the admin key and sees the
request counted and the breaker's state, the charts of the window (SVG bars and points with the
request's figures, one latency chart per timed stage) and the MLOps panel read from a registry
seeded with a challenger, a drift verdict and an evaluation suite's gates. A screenshot of each page is decoded and checked.

Without ``/usr/bin/chromium`` the test is skipped, unless ``GENAI_REQUIRE_BROWSER=1`` (CI), where
it fails instead.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from genai_factory.config import Settings, bundled_docs_dir
from genai_factory.gateway.keys import new_key
from genai_factory.gateway.sql_store import SqlKeyStore, open_engine
from genai_factory.llm.breaker import CircuitBreakerModel
from genai_factory.messages import ChatDelta, ChatOptions, Message
from genai_factory.observability.interaction_store import (
    feedback_table,
    open_interaction_engine,
)
from genai_factory.service import create_app
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# Read at import: the suite's autouse fixture clears GENAI_* variables before each test.
REQUIRE_BROWSER = os.environ.get("GENAI_REQUIRE_BROWSER") == "1"
SCREENSHOT_DIR = os.environ.get("GENAI_UI_SCREENSHOTS")
VIEWPORT = {"width": 1280, "height": 800}
MODEL = "fake-chat"
PRICING = {MODEL: {"input_per_million": 1000.0, "output_per_million": 2000.0}}
QUESTION = "How do I configure a fallback model?"
REPLY = (
    "To configure a fallback model, list it under llm.fallbacks in the settings [1]. When the "
    "primary backend fails, the service tries each fallback in order, and every backend keeps "
    "its own retry policy and circuit breaker, so a broken backend is skipped quickly until it "
    "recovers."
)


def _browser_or_skip() -> None:
    reason = ""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (install Debian's package: apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install playwright)"
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"GENAI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


class SlowStreamingModel(FakeChatModel):
    """The fake model, with a pause between streamed pieces so the page can be seen mid-stream."""

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        async for delta in super().stream(messages, options):
            await asyncio.sleep(0.04)
            yield delta


@dataclass
class Running:
    base_url: str
    settings: Settings
    user_key: str
    user_id: str
    admin_key: str


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm={"provider": "fake", "model": MODEL, "max_tokens": 200, "pricing": PRICING},
        embeddings={"provider": "fake"},
        # The answers are the fake model's, as written (no source sentence replaces them).
        rag={"knowledge_dirs": [bundled_docs_dir()], "min_score": 0.2, "extract_on_decline": False},
        auth={"enabled": True, "key_cache_s": 0},
        observability={"access_log": False},
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Running]:
    _browser_or_skip()
    settings = _settings(tmp_path)
    user, user_plain = new_key("web-user")
    admin, admin_plain = new_key("operator", admin=True)

    async def add_keys() -> None:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        store = SqlKeyStore(engine)
        await store.add(user)
        await store.add(admin)
        engine.dispose()

    asyncio.run(add_keys())
    _seed_mlops(settings, tmp_path)
    model = CircuitBreakerModel(SlowStreamingModel([REPLY] * 5, name=MODEL))
    app = create_app(settings, model=model, embedder=FakeEmbedder())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
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
        yield Running(base_url, settings, user_plain, user.id, admin_plain)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _feedback_rows(settings: Settings, trace_id: str) -> list[tuple[int, str | None]]:
    """The stored ratings of ``trace_id`` (plain SQL: Playwright's sync API owns the loop)."""
    engine = open_interaction_engine(settings.interaction_database_url())
    query = sa.select(feedback_table.c.rating, feedback_table.c.key_id).where(
        feedback_table.c.trace_id == trace_id
    )
    try:
        with engine.connect() as conn:
            return [(row.rating, row.key_id) for row in conn.execute(query)]
    finally:
        engine.dispose()


def _seed_mlops(settings: Settings, tmp_path: Path) -> None:
    """A registry with a challenger (no champion: the fake model keeps serving), a drift run with
    its report and a suite run whose second gate failed."""
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    mlflow = import_mlflow()
    weights = tmp_path / "challenger.gguf"
    weights.write_bytes(b"GGUF")
    ModelRegistry(settings).register(settings.mlops.llm_name, weights)
    report = tmp_path / "drift_report.html"
    report.write_text("<html>drift</html>", encoding="utf-8")
    with tracked_run(settings, "drift", job="drift", tags={"drift": "true"}):
        mlflow.log_params({"alpha": 0.05})
        mlflow.log_metrics({"prompt_length_p_adjusted": 0.001})
        mlflow.log_artifact(str(report), "drift")
    gates = {
        "gates": "failed",
        "gate.0": "PASSED  f1 >= 0.3: 0.5",
        "gate.1": "FAILED  em >= 0.5: 0.2",
    }
    with tracked_run(settings, "suite-guide", job="eval_suite", tags=gates):
        pass


def _check_screenshot(png: bytes, name: str, tmp_path: Path) -> None:
    """The PNG has the viewport's size, many colours (not blank) and the page's dark header."""
    from PIL import Image

    (tmp_path / name).write_bytes(png)
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(SCREENSHOT_DIR) / name)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, f"{name}: {len(colours or [])} colours"
    # The stylesheet was applied: the header bar is dark, the page below it light.
    red, green, blue = image.getpixel((5, 5))  # type: ignore[misc]
    assert red + green + blue < 200, f"{name}: header pixel {(red, green, blue)}"
    red, green, blue = image.getpixel((VIEWPORT["width"] - 5, VIEWPORT["height"] - 5))  # type: ignore[misc]
    assert red + green + blue > 600, f"{name}: page pixel {(red, green, blue)}"


def test_chat_and_operations_pages_in_chromium(service: Running, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )

            # -- chat: save the key, ask, watch the stream, read sources, rate ---------------
            page.goto(f"{service.base_url}/ui")
            expect(page.locator("#empty-state")).to_be_visible()
            page.fill("#api-key", service.user_key)
            page.click("#key-form button[type=submit]")
            expect(page.locator("#key-status")).to_contain_text(service.user_id)
            stored = page.evaluate("localStorage.getItem('genai-factory.api-key')")
            assert stored == service.user_key

            page.fill("#query", QUESTION)
            page.click("#ask")
            answer = page.locator("[data-testid=answer]")
            # Mid-stream: part of the answer is shown while the stream is still open.
            page.wait_for_function(
                "() => { const a = document.querySelector('[data-testid=answer]');"
                " return a && a.classList.contains('streaming') && a.textContent.length > 0"
                f" && a.textContent.length < {len(REPLY)}; }}",
                timeout=15_000,
            )
            expect(answer).not_to_have_class(re.compile("streaming"), timeout=20_000)
            assert answer.inner_text().strip() == REPLY
            citations = page.locator("[data-testid=citation]")
            assert citations.count() >= 1
            expect(citations.first).to_contain_text("[1]")
            expect(citations.first).to_contain_text(".md")
            meta = page.locator("[data-testid=answer-meta]").inner_text()
            assert MODEL in meta and "route rag" in meta
            match = re.search(r"trace ([0-9a-f]{32})", meta)
            assert match, meta
            trace_id = match.group(1)

            page.click("[data-testid=thumbs-up]")
            expect(page.locator(".feedback-note")).to_have_text("Thanks, feedback saved.")
            assert _feedback_rows(service.settings, trace_id) == [(1, service.user_id)]
            _check_screenshot(page.screenshot(), "chat.png", tmp_path)

            # -- operations: refused with the user's key, shown with the admin key ----------
            page.goto(f"{service.base_url}/ui/ops")
            expect(page.locator("#ops-error")).to_contain_text("admin key")
            page.fill("#api-key", service.admin_key)
            page.click("#key-form button[type=submit]")
            expect(page.locator("#ops-error")).to_be_hidden()
            expect(page.locator("#stat-requests")).to_have_text("1")
            expect(page.locator("#stat-errors")).to_have_text("0")
            expect(page.locator("#stat-p50")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
            user_row = page.locator(f"#keys-body tr[data-key='{service.user_id}']")
            expect(user_row).to_be_visible()
            expect(user_row.locator("td").nth(1)).to_have_text("1")
            breaker = page.locator(f"#breakers-body tr[data-backend='{MODEL}']")
            expect(breaker.locator("[data-testid=breaker-state]")).to_have_text("closed")

            # -- charts: the request is one bar, its latency points, one chart per stage ------
            bars = page.locator("#chart-requests svg rect.bar.requests")
            expect(bars).to_have_count(1)
            assert bars.first.get_attribute("data-value") == "1"
            expect(page.locator("#chart-requests svg rect.bar.errors")).to_have_count(0)
            cost = page.locator("#chart-cost svg rect.bar.cost")
            expect(cost).to_have_count(1)
            assert float(cost.first.get_attribute("data-value") or 0) > 0
            p50 = page.locator("#chart-latency svg circle.point.p50")
            expect(p50).to_have_count(1)
            assert float(p50.first.get_attribute("data-value") or 0) > 0
            expect(page.locator("#chart-latency svg path.line.p95")).to_have_count(1)
            stages = page.locator("[data-testid=stage-chart]")
            assert stages.count() >= 2, "one latency chart per timed stage"
            expect(
                page.locator("[data-testid=stage-chart][data-stage=llm] circle.point")
            ).to_have_count(2)
            assert page.locator("#chart-requests svg").get_attribute("role") == "img"
            expect(page.locator("#charts-empty")).to_be_hidden()

            # -- the MLOps panel ---------------------------------------------------------------
            llm = page.locator("#models-body tr[data-model='genai-llm'] td")
            expect(llm.nth(1)).to_have_text("–")  # no champion: served as shipped
            expect(llm.nth(2)).to_have_text("v1")
            expect(page.locator("[data-testid=drift-verdict]")).to_have_text("drift")
            expect(page.locator("#drift-state")).to_contain_text("prompt_length")
            expect(page.locator("[data-testid=drift-report]")).to_contain_text("drift_report.html")
            suite = page.locator("#runs-body tr[data-job='eval_suite']")
            expect(suite).to_contain_text("gates failed")
            gates = suite.locator("[data-testid=gate]")
            expect(gates).to_have_count(2)
            expect(gates.nth(1)).to_contain_text("failed")
            expect(page.locator("#runs-body tr[data-job='drift']")).to_have_count(1)
            page.select_option("#window", "360")  # 6 hours: still the one request
            expect(page.locator("#chart-requests svg rect.bar.requests")).to_have_count(1)
            _check_screenshot(page.screenshot(), "ops.png", tmp_path)
            # The one expected error: the refused stats call with the non-admin key.
            unexpected = [e for e in errors if "status of 403" not in e]
            assert not unexpected, f"browser errors: {unexpected}"
        finally:
            browser.close()
