"""The real embedder on a handful of texts: hybrid search and the sentence reranker by meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.messages import Document
from genai_factory.rag.embedding import SentenceTransformerEmbedder
from genai_factory.rag.embedding_cache import CachedEmbedder
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.loaders import content_hash
from genai_factory.rag.rerank import SentenceMaxSimReranker
from genai_factory.rag.stores import EmbeddedVectorStore

pytestmark = pytest.mark.slow

TEXTS = {
    "heart": "Regular aerobic exercise lowers resting blood pressure. It also improves sleep.",
    "plants": "Chlorophyll absorbs light so that leaves can turn carbon dioxide into sugar.",
    "cache": "A write-back cache delays disk writes until a cache line is evicted.",
    "tides": "The gravitational pull of the moon raises the oceans twice a day.",
}


async def test_minilm_hybrid_search_finds_by_meaning(tmp_path: Path) -> None:
    embedder = CachedEmbedder(SentenceTransformerEmbedder(), tmp_path / "cache")
    index = KnowledgeIndex(
        EmbeddedVectorStore(tmp_path / "v", embedder=embedder.name),
        embedder,
        reranker=SentenceMaxSimReranker(embedder),
    )
    documents = [
        Document(id=k, text=v, title=k, source=k, content_hash=content_hash(v))
        for k, v in TEXTS.items()
    ]
    await index.ingest_documents(documents)
    hits = await index.search("Does working out reduce hypertension?", 2)
    assert hits[0].chunk.document_id == "heart"
    assert hits[0].score > 0.3 and "sentence" in hits[0].scores
    photosynthesis = await index.search_documents("how do plants make food from sunlight", 4)
    assert photosynthesis[0].chunk.document_id == "plants"
    misses = embedder.misses
    await index.search("Does working out reduce hypertension?", 2)
    assert embedder.misses == misses  # the query and every sentence vector came from the cache
    await embedder.aclose()
