"""``create_app(settings)``: the FastAPI application, its lifespan and routes.

Start-up builds the components at once and loads them in the background: ``/healthz`` answers
immediately, ``/readyz`` turns 200 when the model is loaded and the knowledge base is indexed, and
requests before that get a 503 with ``Retry-After``.

The gateway (API keys, rate limits, budgets, spend ledger) opens first: its middleware guards every
route but the probes, and when auth is on the model is wrapped in a ``MeteredModel`` so each call is
charged to the requesting key (see ``docs/gateway.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from genai_factory import __version__
from genai_factory.assistant.assembly import Components, assemble
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError
from genai_factory.gateway.admin import router as admin_router
from genai_factory.gateway.assembly import check_auth_binding, open_gateway
from genai_factory.gateway.metered import MeteredModel
from genai_factory.gateway.middleware import GatewayMiddleware
from genai_factory.llm.base import ChatModel
from genai_factory.rag.embedding import Embedder
from genai_factory.service.errors import error_response, install_error_handlers
from genai_factory.service.routes import assistant, health

log = structlog.get_logger(__name__)

ReadyHook = Callable[[Components], None]


async def _start(app: FastAPI, parts: Components, on_ready: ReadyHook | None) -> None:
    try:
        log.info("loading_models", model=parts.model.name, embedder=parts.embedder.name)
        await parts.warm_up()
        report = await parts.ingest_bundled()
        if report is not None:
            log.info(
                "knowledge_base_ingested",
                documents=report.documents_indexed,
                chunks=report.chunks_indexed,
            )
        parts.ready = True
        log.info("service_ready", model=parts.model.name, chunks=await parts.index.count())
        if on_ready is not None:
            on_ready(parts)
    except GenAIFactoryError as exc:
        app.state.startup_error = exc.message
        log.error("startup_failed", error=exc.message)
    except Exception as exc:
        app.state.startup_error = f"{type(exc).__name__}: {exc}"
        log.exception("startup_failed")


def create_app(
    settings: Settings | None = None,
    *,
    model: ChatModel | None = None,
    embedder: Embedder | None = None,
    on_ready: ReadyHook | None = None,
) -> FastAPI:
    """The GenAI Assistant service. ``model`` / ``embedder`` replace the configured ones (tests)."""
    resolved = settings or load_settings()
    check_auth_binding(resolved)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = await open_gateway(resolved)
        app.state.gateway = gateway
        try:
            parts = assemble(resolved, model=model, embedder=embedder)
        except BaseException:
            await gateway.aclose()
            raise
        if gateway.enforcing:
            parts.model = parts.assistant.model = MeteredModel(parts.model, gateway)
        app.state.components = parts
        app.state.startup_error = None
        app.state.startup_task = asyncio.create_task(_start(app, parts, on_ready))
        try:
            yield
        finally:
            app.state.startup_task.cancel()
            await asyncio.gather(app.state.startup_task, return_exceptions=True)
            await parts.aclose()
            await gateway.aclose()

    app = FastAPI(
        title="GenAI Factory — GenAI Assistant",
        version=__version__,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(GatewayMiddleware, render_error=error_response)
    app.include_router(health.router)
    app.include_router(assistant.router)
    app.include_router(admin_router)
    return app
