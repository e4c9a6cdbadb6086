"""Vector stores: the protocol, its backends, and ``get_store`` to name one (lazy imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from genai_factory.components import VECTOR_STORES, lookup
from genai_factory.rag.stores.embedded import EmbeddedVectorStore
from genai_factory.rag.stores.protocol import VectorStore

#: Store name → its class: the table of :mod:`genai_factory.components`.
STORES = VECTOR_STORES


def get_store(kind: str, **arguments: Any) -> VectorStore:
    """A registered vector store by name: ``embedded`` (``directory=``, ``embedder=``) or
    ``qdrant`` (``collection=`` and ``url=`` | ``path=`` | ``location=`` | ``client=``).

    Raises:
        ConfigurationError: ``kind`` is not registered.
    """
    store_class = cast(Callable[..., VectorStore], lookup(STORES, kind, "vector store").load())
    return store_class(**arguments)


__all__ = ["STORES", "EmbeddedVectorStore", "VectorStore", "get_store"]
