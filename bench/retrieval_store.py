"""The embedded vector store and the ingest pipeline, against simple anchors.

1. Search latency of :class:`EmbeddedVectorStore` (exact: one BLAS matrix-vector product) at several
   sizes, against the anchor of the same product in bare NumPy (``matrix @ q`` + ``argpartition``)
   and against Qdrant's local mode (same API as a server) at the smallest size. Median of
   ``--queries`` searches; ratio = store / anchor.
2. Ingest: :class:`KnowledgeIndex` over synthetic abstracts with an embedder that costs nothing
   (precomputed vectors), so what is measured is everything but embedding (splitting, the vector
   store, BM25, the catalog); compared with the real MiniLM's embedding rate on the same chunks.
   The ratio says how much of an ingest embedding takes.

    .venv/bin/python bench/retrieval_store.py [--sizes 20000,100000,200000] [--queries 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from genai_factory.messages import Chunk, Document
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.loaders import content_hash
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.rag.stores.qdrant import QdrantVectorStore

DIM = 384
WORDS = [
    "cell",
    "protein",
    "gene",
    "expression",
    "tumor",
    "patients",
    "risk",
    "mouse",
    "brain",
    "signal",
]


def _unit_rows(rng: np.random.Generator, n: int) -> NDArray[np.float32]:
    matrix = rng.standard_normal((n, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def _chunks(n: int) -> list[Chunk]:
    return [
        Chunk(
            id=f"d{i}:0", document_id=f"d{i}", text=f"chunk {i}", position=0, title="t", source="s"
        )
        for i in range(n)
    ]


def _median_ms(samples: Sequence[float]) -> float:
    return 1000 * statistics.median(samples)


async def _search_row(n: int, queries: int, rng: np.random.Generator, qdrant: bool) -> None:
    vectors, probes = _unit_rows(rng, n), _unit_rows(rng, queries)
    with tempfile.TemporaryDirectory() as work:
        store = EmbeddedVectorStore(Path(work) / "v")
        await store.add(_chunks(n), vectors)
        timings = []
        for probe in probes:
            started = time.perf_counter()
            await store.search(probe, 10)
            timings.append(time.perf_counter() - started)
    anchor = []
    for probe in probes:
        started = time.perf_counter()
        scores = vectors @ probe
        top = np.argpartition(-scores, 9)[:10]
        top[np.argsort(-scores[top])]
        anchor.append(time.perf_counter() - started)
    line = (
        f"{n:>8} chunks  embedded {_median_ms(timings):7.2f} ms  numpy anchor "
        f"{_median_ms(anchor):7.2f} ms  ratio {statistics.median(timings) / statistics.median(anchor):5.2f}"
    )
    if qdrant:
        local = QdrantVectorStore("bench", location=":memory:")
        await local.add(_chunks(n), vectors)
        q_times = []
        for probe in probes[:20]:
            started = time.perf_counter()
            await local.search(probe, 10)
            q_times.append(time.perf_counter() - started)
        await local.aclose()
        line += f"  qdrant-local {_median_ms(q_times):7.2f} ms"
    print(line, flush=True)


class _FreeEmbedder:
    """Vectors from a fixed random table: embedding costs (almost) nothing."""

    name = "free"
    dimension = DIM

    def __init__(self) -> None:
        self._table = _unit_rows(np.random.default_rng(1), 1024)

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._table[[hash(t) % 1024 for t in texts]]

    async def aclose(self) -> None:
        return None


def _abstracts(n: int, rng: np.random.Generator) -> list[Document]:
    docs = []
    for i in range(n):
        sentences = [
            " ".join(rng.choice(WORDS, size=18)).capitalize() + "."
            for _ in range(int(rng.integers(6, 12)))
        ]
        text = " ".join(sentences)
        docs.append(
            Document(
                id=f"a{i}",
                text=text,
                title=f"Abstract {i}",
                source=f"a{i}",
                content_hash=content_hash(text),
            )
        )
    return docs


async def _ingest_row(documents: int, sample: int) -> None:
    rng = np.random.default_rng(7)
    docs = _abstracts(documents, rng)
    with tempfile.TemporaryDirectory() as work:
        index = KnowledgeIndex(EmbeddedVectorStore(Path(work) / "v"), _FreeEmbedder())
        started = time.perf_counter()
        report = await index.ingest_documents(docs)
        pipeline_s = time.perf_counter() - started
        await index.aclose()
    chunks_per_s = report.chunks_indexed / pipeline_s
    print(
        f"ingest without embedding: {documents} docs, {report.chunks_indexed} chunks in "
        f"{pipeline_s:.1f} s = {documents / pipeline_s:.0f} docs/s, {chunks_per_s:.0f} chunks/s",
        flush=True,
    )
    if sample <= 0:
        return
    from genai_factory.rag.embedding import SentenceTransformerEmbedder
    from genai_factory.rag.splitting import embedding_text, split_document

    texts = [embedding_text(c) for d in docs[:sample] for c in split_document(d)]
    minilm = SentenceTransformerEmbedder()
    await minilm.load()
    started = time.perf_counter()
    await minilm.embed(texts)
    embed_rate = len(texts) / (time.perf_counter() - started)
    await minilm.aclose()
    share = (1 / embed_rate) / (1 / embed_rate + 1 / chunks_per_s)
    print(
        f"MiniLM embedding: {embed_rate:.1f} chunks/s; the rest of the pipeline is "
        f"{chunks_per_s / embed_rate:.0f}x faster, so embedding takes {100 * share:.1f}% of an ingest",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,100000,200000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--embed-sample", type=int, default=40, help="0 skips the MiniLM part")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("exact search, top 10 of unit vectors (384 dims):")
    for i, size in enumerate(int(s) for s in args.sizes.split(",")):
        asyncio.run(_search_row(size, args.queries, rng, qdrant=i == 0))
    asyncio.run(_ingest_row(args.documents, args.embed_sample))


if __name__ == "__main__":
    main()
