"""Vector stores: the protocol and its backends."""

from genai_factory.rag.stores.embedded import EmbeddedVectorStore
from genai_factory.rag.stores.protocol import VectorStore

__all__ = ["EmbeddedVectorStore", "VectorStore"]
