"""``create_app(settings)``: the FastAPI application, its lifespan and routes.

Start-up builds the components at once and loads them in the background: ``/healthz`` answers
immediately, ``/readyz`` turns 200 when the model is loaded and the knowledge base is indexed, and
requests before that get a 503 with ``Retry-After``.

:func:`open_runtime` opens what the service runs on, once and in order: the telemetry (tracing,
interaction log, cost monitor; the Prometheus metrics are made here, one registry per app), the
gateway (API keys, rate limits, budgets, spend ledger) with the telemetry's hooks, and the
components, whose model chain ends in a ``MeteredModel`` (each call charged to the requesting key
when auth is on; ``docs/gateway.md``) and a ``TracedModel`` (``docs/observability.md``). The
telemetry middleware is outermost: it gives every request its trace id, root span and HTTP metrics;
the gateway middleware guards every route but the probes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI

from genai_factory import __version__
from genai_factory.assistant.assembly import Components, assemble
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError
from genai_factory.gateway.admin import router as admin_router
from genai_factory.gateway.assembly import check_auth_binding, open_gateway
from genai_factory.gateway.middleware import GatewayMiddleware
from genai_factory.gateway.service import GatewayService
from genai_factory.llm.base import ChatModel
from genai_factory.mlops.champion import ChampionWatcher
from genai_factory.mlops.state import read_state_safely
from genai_factory.observability.assembly import Telemetry, open_telemetry
from genai_factory.observability.metrics import Metrics
from genai_factory.observability.middleware import ObservabilityMiddleware
from genai_factory.rag.embedding import Embedder
from genai_factory.safety.registry import SafetyService
from genai_factory.service.body_limit import BodyLimitMiddleware
from genai_factory.service.errors import ERROR_RESPONSES, error_response, install_error_handlers
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


async def _refresh_mlops(app: FastAPI, settings: Settings, registry: Metrics, every: float) -> None:
    """Keep the MLOps gauges (and the ops page's cached state) fresh from the registry."""
    while True:
        state = await read_state_safely(settings)
        if state.error is None:
            registry.observe_mlops(state)
        app.state.mlops_state = (time.monotonic(), state)
        await asyncio.sleep(every)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    registry: Metrics,
    *,
    model: ChatModel | None = None,
    embedder: Embedder | None = None,
) -> AsyncIterator[tuple[Telemetry, GatewayService, Components]]:
    """Open everything the service runs on, in dependency order, and close it in reverse.

    The guards first (cheap until loaded: their redactor cleans the interaction log), then the
    telemetry, then the gateway with the telemetry's hooks, then the components with the whole
    model chain (``assistant.assembly``). Nothing is rewired afterwards.
    """
    safety = SafetyService(settings) if settings.safety.enabled else None
    async with AsyncExitStack() as stack:
        redactor = safety.redactor() if safety is not None else None
        telemetry = await open_telemetry(settings, registry, redactor=redactor)
        stack.push_async_callback(telemetry.aclose)
        gateway = await open_gateway(settings, hooks=telemetry.gateway_hooks)
        stack.push_async_callback(gateway.aclose)
        parts = assemble(
            settings,
            model=model,
            embedder=embedder,
            on_breaker_change=registry.breaker_changed,
            gateway=gateway,
            safety=safety,
        )
        stack.push_async_callback(parts.aclose)
        yield telemetry, gateway, parts


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
        runtime = open_runtime(resolved, registry, model=model, embedder=embedder)
        async with runtime as (telemetry, gateway, parts):
            app.state.gateway, app.state.telemetry = gateway, telemetry
            app.state.components = parts
            app.state.startup_error = None
            app.state.champion_task = None
            app.state.startup_task = asyncio.create_task(_start(app, parts, on_ready))
            refresh = resolved.observability.mlops_refresh_s
            app.state.mlops_task = (
                asyncio.create_task(_refresh_mlops(app, resolved, registry, refresh))
                if refresh > 0 and resolved.observability.metrics_enabled
                else None
            )
            try:
                yield
            finally:
                tasks = [app.state.startup_task, app.state.champion_task, app.state.mlops_task]
                running = [task for task in tasks if task is not None]
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    app = FastAPI(
        title="GenAI Factory — GenAI Assistant",
        version=__version__,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.metrics = registry
    install_error_handlers(app)
    routers = [health.router, assistant.router, documents.router, openai_compat.router]
    routers += [feedback.router, sessions.router, admin_router, ops.router, ui.router]
    routers.append(vision.router)  # the image model: opened on its first request
    if resolved.observability.metrics_enabled:
        routers.append(metrics.router)
    app.add_middleware(GatewayMiddleware, render_error=error_response)
    body_limit = resolved.service.max_body_bytes
    app.add_middleware(
        BodyLimitMiddleware,
        limit=body_limit,
        by_prefix={"/v1/documents": resolved.rag.max_upload_bytes + body_limit},
        render_error=error_response,
    )
    # Added last, so outermost: it sees every request, the gateway's refusals included.
    app.add_middleware(
        ObservabilityMiddleware,
        routes=[route for router in routers for route in router.routes],
        access_log=resolved.observability.access_log,
    )
    for router in routers:
        app.include_router(router)
    openai_compat.document_request_schemas(app)
    return app
