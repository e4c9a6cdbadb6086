"""The web UI: ``GET /ui`` (chat), ``GET /ui/ops`` (operations) and their static assets.

The pages are plain HTML, CSS and JavaScript shipped in the package (``service/ui/``), with no build
step and nothing loaded from elsewhere. They hold no data, so the gateway serves them without a key
(``UI_PATH`` and ``UI_PREFIX`` in the gateway middleware); every figure and answer comes from the API, called by
the page with the key the user typed in (kept in the browser's ``localStorage``). A strict Content
Security Policy allows only this origin's scripts, styles and API calls.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from genai_factory.exceptions import NotFoundError

router = APIRouter(prefix="/ui", include_in_schema=False)

UI_DIR = Path(str(resources.files("genai_factory.service") / "ui"))
#: Served assets and their media types; nothing else under the directory is reachable.
ASSETS = {
    "ui.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "ops.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(UI_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("")
async def chat_page() -> FileResponse:
    """The chat page: ask, read the streamed answer and its sources, rate it."""
    return _file("chat.html", "text/html; charset=utf-8")


@router.get("/ops")
async def ops_page() -> FileResponse:
    """The operations page: totals and charts over a window, cost per key, guards, breakers and
    the MLOps state (champions, the last drift verdict, job runs and their gates)."""
    return _file("ops.html", "text/html; charset=utf-8")


@router.get("/assets/{name}")
async def asset(name: str) -> FileResponse:
    """One of :data:`ASSETS`; 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no UI asset named {name!r}")
    return _file(name, media_type)
