"""``Telemetry``: the observability of one application, opened in its lifespan.

It holds the metrics (made in ``create_app``), the tracer provider, the interaction-log writer and
the cost monitor, and makes the gateway's hooks (refusals and spend into them) when the gateway
is opened. Routes report each answer
or failure through :meth:`Telemetry.observing`, which feeds the pipeline metrics (stages, tokens,
cost per model and key) and the interaction log in one place, and, when the interaction log is
durable (``observability.interaction_log_durable``), waits until the request's record is
committed before the route returns its response (a stream waits in ``service.sse.observed_sse``,
before its closing events).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from genai_factory.config import ObservabilitySettings, Settings
from genai_factory.gateway.context import current_request
from genai_factory.gateway.keys import KeyStore
from genai_factory.gateway.ledger import SpendLedger
from genai_factory.gateway.service import GatewayHooks
from genai_factory.observability.cost_monitor import CostMonitor
from genai_factory.observability.interaction_store import (
    SqlInteractionLog,
    open_interaction_engine,
)
from genai_factory.observability.interaction_writer import InteractionWriter, Receipt
from genai_factory.observability.interactions import (
    InteractionStatus,
    Redactor,
    TextPolicy,
    record_answer,
    record_failure,
)
from genai_factory.observability.metrics import Metrics
from genai_factory.observability.tracing import TRACER_NAME, build_tracer_provider

if TYPE_CHECKING:
    from genai_factory.assistant.answer import AssistantAnswer

log = structlog.get_logger(__name__)
SPILL_FILE = "interactions.unwritten.jsonl"


def request_key_id() -> str | None:
    """The id of the API key of the request being served (``None``: no key, auth off)."""
    context = current_request()
    return context.key.id if context is not None and context.key is not None else None


@dataclass
class Report:
    """Reports the outcome of one request once: its answer, or its failure (the first call wins;
    a stream's ``finally`` may report a cancellation that is then ignored)."""

    telemetry: Telemetry
    endpoint: str
    request_text: str
    trace_id: str
    mode: str | None = None
    session_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    done: bool = False
    #: The receipt of the reported outcome's interaction record.
    receipt: Receipt | None = None

    def answered(self, answer: AssistantAnswer, status: InteractionStatus = "ok") -> None:
        if self.done:
            return
        self.done = True
        self.receipt = self.telemetry.answered(
            answer,
            endpoint=self.endpoint,
            request_text=self.request_text,
            mode=self.mode,
            status=status,
        )

    def failed(self, exc: BaseException) -> None:
        if self.done:
            return
        self.done = True
        self.receipt = self.telemetry.failed(
            exc,
            trace_id=self.trace_id,
            endpoint=self.endpoint,
            request_text=self.request_text,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 2),
            mode=self.mode,
            session_id=self.session_id,
        )

    async def recorded(self) -> None:
        """Wait until the reported outcome's record is committed (or spilled), when the
        interaction log is durable; at once otherwise."""
        if self.receipt is not None and self.telemetry.settings.interaction_log_durable:
            await self.telemetry.interactions.wait(self.receipt)


@dataclass
class Observation:
    """What a route reports inside :meth:`Telemetry.observing`: the answer, and its outcome.

    A streamed answer is reported later through ``report`` (``service.sse.observed_sse``)."""

    report: Report
    answer: AssistantAnswer | None = None
    status: InteractionStatus = "ok"


@dataclass
class Telemetry:
    """Metrics, tracing, interaction log and cost monitor of one application."""

    metrics: Metrics
    tracer_provider: TracerProvider
    interactions: InteractionWriter
    text_policy: TextPolicy = field(default_factory=TextPolicy)
    settings: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    #: Made with the gateway's hooks (:meth:`gateway_hooks`).
    cost_monitor: CostMonitor | None = None

    def __post_init__(self) -> None:
        self.tracer: Tracer = self.tracer_provider.get_tracer(TRACER_NAME)

    def gateway_hooks(self, keys: KeyStore, ledger: SpendLedger) -> GatewayHooks:
        """The gateway's observers: refusals counted, recorded spend checked against budgets by
        a cost monitor made here (passed to ``open_gateway``, which calls it once)."""
        webhook = self.settings.budget_alert_webhook
        self.cost_monitor = CostMonitor(
            keys=keys,
            ledger=ledger,
            share=self.settings.budget_alert_share,
            metrics=self.metrics,
            webhook_url=webhook,
            http=httpx.AsyncClient(timeout=self.settings.webhook_timeout_s) if webhook else None,
        )
        return GatewayHooks(
            on_refusal=self.metrics.refused, on_recorded=self.cost_monitor.spend_recorded
        )

    def answered(
        self,
        answer: AssistantAnswer,
        *,
        endpoint: str,
        request_text: str,
        mode: str | None = None,
        status: InteractionStatus = "ok",
    ) -> Receipt:
        """Count ``answer`` in the metrics and queue its interaction record (its receipt)."""
        key_id = request_key_id()
        self.metrics.observe_stages(answer.stages_ms)
        self.metrics.observe_usage(answer.model, key_id, answer.usage)
        self.metrics.observe_pipeline(endpoint, answer.route, status)
        return self.interactions.submit(
            record_answer(
                answer,
                endpoint=endpoint,
                request_text=request_text,
                policy=self.text_policy,
                key_id=key_id,
                mode=mode,
                status=status,
            )
        )

    def failed(
        self,
        exc: BaseException,
        *,
        trace_id: str,
        endpoint: str,
        request_text: str,
        latency_ms: float,
        mode: str | None = None,
        session_id: str | None = None,
    ) -> Receipt:
        """Count a failed request and queue its interaction record (its receipt)."""
        record = record_failure(
            exc,
            trace_id=trace_id,
            endpoint=endpoint,
            request_text=request_text,
            policy=self.text_policy,
            latency_ms=latency_ms,
            key_id=request_key_id(),
            session_id=session_id,
            mode=mode,
        )
        self.metrics.observe_pipeline(endpoint, "none", record.status)
        return self.interactions.submit(record)

    @asynccontextmanager
    async def observing(
        self,
        endpoint: str,
        request_text: str,
        *,
        trace_id: str,
        mode: str | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[Observation]:
        """Report the block's answer (set ``observation.answer``) or its exception; when the
        interaction log is durable, leave once its record is committed (see the module)."""
        key_id = request_key_id()
        if key_id is not None:
            structlog.contextvars.bind_contextvars(key_id=key_id)
        report = Report(self, endpoint, request_text, trace_id, mode, session_id)
        observation = Observation(report)
        try:
            yield observation
        except Exception as exc:
            report.failed(exc)
            await report.recorded()
            raise
        if observation.answer is not None:
            report.answered(observation.answer, observation.status)
            await report.recorded()

    async def aclose(self) -> None:
        await self.interactions.aclose()
        if self.cost_monitor is not None:
            await self.cost_monitor.aclose()
        await asyncio.to_thread(self.tracer_provider.shutdown)


async def open_telemetry(
    settings: Settings, metrics: Metrics, *, redactor: Redactor | None = None
) -> Telemetry:
    """Open the interaction log and the tracer provider. ``redactor`` cleans stored texts.

    Raises:
        ConfigurationError: the interaction log's database cannot be opened.
    """
    observability = settings.observability
    engine = await asyncio.to_thread(open_interaction_engine, settings.interaction_database_url())
    writer = InteractionWriter(
        SqlInteractionLog(engine), metrics=metrics, spill_path=settings.data_dir / SPILL_FILE
    )
    writer.start()
    return Telemetry(
        metrics=metrics,
        tracer_provider=build_tracer_provider(observability),
        interactions=writer,
        text_policy=TextPolicy(store_text=observability.store_text, redact=redactor),
        settings=observability,
    )
