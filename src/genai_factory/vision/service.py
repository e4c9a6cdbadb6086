"""The image model inside the HTTP service: opened on the first vision request, then kept current.

Opening is lazy on purpose: the assistant's start-up (``make run``) does not load, or even import,
the image model; the first vision request pays for it once (loading a ~1 MB bundle; importing
MLflow when a registry exists). After that, at most every ``mlops.poll_s`` seconds a request starts
a background check of the registry's champion of ``vision.model_name``; a new champion is loaded in
a worker thread and swapped in by one attribute assignment: requests already running finish on the
old model, none fails, no restart. ``vision.backend: sagemaker`` forwards to an endpoint instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from genai_factory.config import Settings
from genai_factory.exceptions import GenAIFactoryError
from genai_factory.vision.inference import ImageClassifier, LocalClassifier, SageMakerClassifier
from genai_factory.vision.input_log import InputLog
from genai_factory.vision.telemetry import VisionMetrics

log = structlog.get_logger(__name__)


class VisionService:
    """One image classifier per application, opened lazily, following the champion."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.metrics = VisionMetrics(registry) if registry is not None else None
        local = settings.vision.backend == "local"
        self.inputs = (
            InputLog(settings.data_dir / "vision") if local and settings.vision.log_inputs else None
        )
        self._classifier: ImageClassifier | None = None
        self._lock = asyncio.Lock()
        self._checked = 0.0
        self._follow_task: asyncio.Task[bool] | None = None

    def _open(self) -> ImageClassifier:
        if self.settings.vision.backend == "sagemaker":
            from genai_factory.vision.sagemaker import SageMakerRuntime

            return SageMakerClassifier(
                SageMakerRuntime.from_settings(self.settings.vision.sagemaker)
            )
        return LocalClassifier.open(self.settings)

    async def classifier(self) -> ImageClassifier:
        """The classifier, opened on first use; may start a background champion check."""
        if self._classifier is None:
            async with self._lock:
                if self._classifier is None:
                    self._classifier = await asyncio.to_thread(self._open)
                    self._checked = time.monotonic()
                    if self.metrics is not None:
                        self.metrics.serving(self._classifier.version, None)
                    log.info("vision_model_serving", version=self._classifier.version)
        elif self._follow_due():
            self._checked = time.monotonic()
            self._follow_task = asyncio.create_task(self.follow())
        return self._classifier

    def _follow_due(self) -> bool:
        if self.settings.vision.backend != "local" or not self.settings.mlops.serve_champion:
            return False
        running = self._follow_task is not None and not self._follow_task.done()
        return not running and time.monotonic() - self._checked >= self.settings.mlops.poll_s

    async def follow(self) -> bool:
        """Serve the current champion if it changed; True when a new model was swapped in."""
        from genai_factory.vision.predictor import Predictor
        from genai_factory.vision.resolve import serving_bundle

        current = self._classifier
        try:
            found = await asyncio.to_thread(serving_bundle, self.settings)
            if current is not None and found.version == current.version:
                return False
            predictor = await asyncio.to_thread(Predictor.load, found.path, version=found.version)
        except GenAIFactoryError as exc:
            log.warning("vision_champion_check_failed", error=exc.message)
            return False
        except Exception as exc:  # the registry is an external system: keep serving
            log.warning("vision_champion_check_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        self._classifier = LocalClassifier(predictor)
        if self.metrics is not None:
            self.metrics.serving(predictor.version, None if current is None else current.version)
        log.info("vision_champion_serving", version=predictor.version)
        return True

    async def predict(self, images: list[bytes], endpoint: str) -> tuple[dict[str, Any], Any]:
        """Classify ``images``; returns the answer and a callable that logs the inputs (or None)."""
        started = time.perf_counter()
        try:
            classifier = await self.classifier()
            if isinstance(classifier, LocalClassifier):
                served = await asyncio.to_thread(classifier.serve, images)
                body, record = served.body, self._recorder(classifier.version, served)
                predictions = served.predictions
            else:
                body, record, predictions = (
                    await asyncio.to_thread(classifier.classify, images),
                    None,
                    None,
                )
        except GenAIFactoryError as exc:
            if self.metrics is not None:
                from genai_factory.exceptions import InvalidRequestError

                self.metrics.failed(endpoint, isinstance(exc, InvalidRequestError))
            raise
        except Exception:
            if self.metrics is not None:
                self.metrics.failed(endpoint, False)
            raise
        if self.metrics is not None and predictions is not None:
            self.metrics.served(endpoint, time.perf_counter() - started, predictions)
        return body, record

    def _recorder(self, version: str, served: Any) -> Any:
        if self.inputs is None:
            return None
        inputs = self.inputs

        def record() -> None:
            inputs.append(version, served.pixels, served.predictions.confidences, served.embeddings)

        return record
