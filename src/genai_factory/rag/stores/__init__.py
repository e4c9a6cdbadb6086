"""Vector stores: the protocol, its backends, and ``get_store`` to name one (lazy imports)."""

from __future__ import annotations

from typing import Any

from genai_factory.exceptions import ConfigurationError
from genai_factory.rag.stores.embedded import EmbeddedVectorStore
from genai_factory.rag.stores.protocol import VectorStore

STORE_KINDS = ("embedded", "qdrant")


def get_store(kind: str, **arguments: Any) -> VectorStore:
    """A registered vector store by name: ``embedded`` (``directory=``, ``embedder=``) or
    ``qdrant`` (``collection=`` and ``url=`` | ``path=`` | ``location=`` | ``client=``)."""
    if kind == "embedded":
        return EmbeddedVectorStore(**arguments)
    if kind == "qdrant":
        from genai_factory.rag.stores.qdrant import QdrantVectorStore

        return QdrantVectorStore(**arguments)
    raise ConfigurationError(f"unknown vector store {kind!r}; registered: {', '.join(STORE_KINDS)}")


__all__ = ["STORE_KINDS", "EmbeddedVectorStore", "VectorStore", "get_store"]
