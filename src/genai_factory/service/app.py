"""``create_app(settings)``: the FastAPI application, its lifespan and routes.

Start-up builds the components at once and loads them in the background: ``/healthz`` answers
immediately, ``/readyz`` turns 200 when the model is loaded and the knowledge base is indexed, and
requests before that get a 503 with ``Retry-After``.

The gateway (API keys, rate limits, budgets, spend ledger) opens first: its middleware guards every
route but the probes, and when auth is on the model is wrapped in a ``MeteredModel`` so each call is
charged to the requesting key (see ``docs/gateway.md``). Then the telemetry (tracing, interaction
log, cost monitor; the Prometheus metrics are made here, one registry per app): its middleware is
outermost, gives every request its trace id, root span and HTTP metrics, and the model is wrapped
in a ``TracedModel`` (see ``docs/observability.md``).
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
from genai_factory.gateway.service import GatewayService
from genai_factory.llm.base import ChatModel
from genai_factory.mlops.champion import ChampionWatcher
from genai_factory.observability.assembly import Telemetry, open_telemetry
from genai_factory.observability.metrics import Metrics
from genai_factory.observability.middleware import ObservabilityMiddleware
from genai_factory.observability.traced_model import TracedModel
from genai_factory.rag.embedding import Embedder
from genai_factory.service.errors import error_response, install_error_handlers
from genai_factory.service.routes import (
    assistant,
    documents,
    feedback,
    health,
    metrics,
    openai_compat,
    ops,
    sessions,
    ui,
    vision,
)

log = structlog.get_logger(__name__)

ReadyHook = Callable[[Components], None]


async def _start(app: FastAPI, parts: Components, on_ready: ReadyHook | None) -> None:
    try:
        if parts.settings.mlops.serve_champion and (parts.swappable or parts.safety):
            # Serve the registry's champions from the start, and follow later promotions.
            watcher = ChampionWatcher(parts.settings, parts.swappable, parts.worker, parts.safety)
            try:
                await watcher.check()
            except Exception as exc:  # an unreachable registry must not stop the service
                log.warning("champion_unavailable", error=str(exc), serving="base")
            app.state.champion_task = asyncio.create_task(watcher.run())
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


async def _open_services(settings: Settings, registry: Metrics) -> tuple[GatewayService, Telemetry]:
    gateway = await open_gateway(settings)
    try:
        return gateway, await open_telemetry(settings, registry, gateway)
    except BaseException:
        await gateway.aclose()
        raise


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
    registry = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway, telemetry = await _open_services(resolved, registry)
        app.state.gateway, app.state.telemetry = gateway, telemetry
        try:
            parts = assemble(
                resolved, model=model, embedder=embedder, on_breaker_change=registry.breaker_changed
            )
        except BaseException:
            await telemetry.aclose()
            await gateway.aclose()
            raise
        metered = MeteredModel(parts.model, gateway) if gateway.enforcing else parts.model
        parts.model = parts.assistant.model = TracedModel(metered)
        app.state.components = parts
        if parts.safety is not None:
            telemetry.set_redactor(parts.safety.redactor())  # no PII in the interaction log
        app.state.startup_error = None
        app.state.champion_task = None
        app.state.startup_task = asyncio.create_task(_start(app, parts, on_ready))
        try:
            yield
        finally:
            tasks = [t for t in (app.state.startup_task, app.state.champion_task) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await parts.aclose()
            await telemetry.aclose()
            await gateway.aclose()

    app = FastAPI(
        title="GenAI Factory — GenAI Assistant",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.metrics = registry
    install_error_handlers(app)
    routers = [health.router, assistant.router, documents.router, openai_compat.router]
    routers += [feedback.router, sessions.router, admin_router, ops.router, ui.router]
    routers.append(vision.router)  # the image model: opened on its first request
    if resolved.observability.metrics_enabled:
        routers.append(metrics.router)
    app.add_middleware(GatewayMiddleware, render_error=error_response)
    # Added last, so outermost: it sees every request, the gateway's refusals included.
    app.add_middleware(
        ObservabilityMiddleware,
        routes=[route for router in routers for route in router.routes],
        access_log=resolved.observability.access_log,
    )
    for router in routers:
        app.include_router(router)
    return app
