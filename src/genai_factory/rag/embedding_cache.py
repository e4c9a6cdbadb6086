"""``CachedEmbedder``: an :class:`Embedder` that remembers every vector on disk by content hash.

Embedding dominates the cost of ingesting and of evaluating retrieval (all-MiniLM-L6-v2 embeds ~18
abstracts/s on two cores), so vectors are kept in one SQLite file per embedder, keyed by the SHA-256
of the exact text. A second ingest or ``eval retrieval`` of the same corpus embeds nothing again;
a changed text misses the cache and is embedded once. The cache is safe to delete at any time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genai_factory.rag.embedding import Embedder, Vectors

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_LOOKUP_BATCH = 500


def text_key(text: str) -> bytes:
    """The cache key of a text: its SHA-256 digest."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class CachedEmbedder:
    """Wraps an embedder; looks every text up in ``directory/<embedder name>.sqlite`` first.

    Args:
        inner: the embedder that computes the misses.
        directory: where the cache file lives; created if missing.
    """

    def __init__(self, inner: Embedder, directory: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.directory = Path(directory)
        self.path = self.directory / f"{_UNSAFE.sub('_', inner.name) or 'embedder'}.sqlite"
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self.inner.dimension = value

    async def load(self) -> None:
        """Load the inner model now (when it has a ``load``), not on the first embedding."""
        loader = getattr(self.inner, "load", None)
        if loader is not None:
            await loader()

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
            )
            self._db = db
        return self._db

    def _lookup(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        with self._lock:
            db = self._connect()
            for start in range(0, len(keys), _LOOKUP_BATCH):
                part = list(keys[start : start + _LOOKUP_BATCH])
                marks = ",".join("?" * len(part))
                rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part)  # noqa: S608  only '?' placeholders are interpolated
                found.update((bytes(k), bytes(v)) for k, v in rows)
        return found

    def _store(self, rows: Sequence[tuple[bytes, bytes]]) -> None:
        with self._lock:
            db = self._connect()
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)
            db.execute("COMMIT")

    async def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [text_key(t) for t in texts]
        found = await asyncio.to_thread(self._lookup, keys)
        missing = sorted({i for i, key in enumerate(keys) if key not in found})
        unique: dict[bytes, str] = {}
        for i in missing:
            unique.setdefault(keys[i], texts[i])
        if unique:
            vectors = await self.inner.embed(list(unique.values()))
            rows = [
                (key, np.asarray(row, dtype=np.float32).tobytes())
                for key, row in zip(unique, vectors, strict=True)
            ]
            await asyncio.to_thread(self._store, rows)
            found.update(rows)
        self.hits += len(texts) - len(unique)
        self.misses += len(unique)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([np.frombuffer(found[key], dtype=np.float32) for key in keys])

    async def aclose(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        await self.inner.aclose()
