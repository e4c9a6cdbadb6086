"""``KeywordIndex``: BM25 over chunks with SQLite FTS5, beside the vectors.

FTS5 was chosen over an in-memory BM25 library by measurement (``bench/retrieval_scifact.py``
notes): on SciFact its BM25 (Porter stemming, English stop words removed from the query) scores at
least as well as bm25s, and it brings what an index that changes needs: incremental adds and deletes,
transactions, persistence in one file, and no extra dependency.

Each chunk is one row with four columns, weighted in the BM25 sum: the document ``title``, the
section ``heading``, the chunk ``body``, and its ``context``: the chunk with its neighbours (the
chunks before and after it in the document). Scoring a chunk by its neighbourhood keeps the
document-level evidence BM25 needs (terms of a passage are spread over adjacent chunks) while still
ranking chunks: on SciFact, chunk-level BM25 on the body alone scored 0.68 nDCG@10, on the context
0.70, as well as whole-document BM25. A query becomes an ``OR`` of its quoted, stop-word-free
terms, so any text is a valid query and no FTS5 syntax is interpreted; a derived "-ly" term brings
its base word (``monthly`` also searches ``month``: :func:`base_form`).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genai_factory.messages import Chunk

_TERM = re.compile(r"\w+", re.UNICODE)
_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5("
    "title, heading, body, context, tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TABLE IF NOT EXISTS rows ("
    "rowid INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, document_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rows_document ON rows(document_id)",
)
_MAX_TERMS = 64

_STOP_WORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves"""
#: English stop words dropped from queries (NLTK's list). Questions ("How do I ...?") then keep only
#: their content words; on SciFact claims this list and Lucene's short one score the same.
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


#: title, heading, body, context: measured on SciFact (the body also counts through its context;
#: its own small weight ranks a chunk above its neighbours).
DEFAULT_WEIGHTS = (1.0, 1.0, 0.2, 1.0)
#: Chunks on each side of a chunk that make up its ``context`` field.
CONTEXT_WINDOW = 1


def neighbourhoods(chunks: Sequence[Chunk], window: int = CONTEXT_WINDOW) -> list[str]:
    """Each chunk's text with the texts of up to ``window`` neighbours on each side (same document,
    by position)."""
    by_document: dict[str, dict[int, str]] = {}
    for chunk in chunks:
        by_document.setdefault(chunk.document_id, {})[chunk.position] = chunk.text
    result = []
    for chunk in chunks:
        texts = by_document[chunk.document_id]
        around = (texts.get(p) for p in range(chunk.position - window, chunk.position + window + 1))
        result.append(" ".join(t for t in around if t))
    return result


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: str
    document_id: str
    score: float


def query_terms(text: str) -> list[str]:
    """The distinct lower-cased terms of a query, stop words removed, in order."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(text.lower()):
        if term not in STOP_WORDS and term not in seen:
            seen[term] = None
    return list(seen)[:_MAX_TERMS]


#: The shortest word left when an adverb or adjective ending in "-ly" is cut to its base
#: (monthly → month, hourly → hour); shorter bases (only, early, apply) are no derivation.
_MIN_LY_BASE = 4


def base_form(term: str) -> str | None:
    """The base word of a derived "-ly" term ("monthly" → "month"), or ``None``.

    Porter stemming keeps such derivations apart ("monthli" vs "month"), so a question about a
    "monthly budget" would not find the text "--budget-period month"; the base is searched too.
    """
    if term.endswith("ly") and len(term) - 2 >= _MIN_LY_BASE and term[-3] not in "aeiolu":
        return term[:-2]
    return None


def match_expression(text: str) -> str:
    """An FTS5 ``MATCH`` expression: the quoted terms joined by ``OR`` (empty if none); a derived
    term is joined by its base word (:func:`base_form`)."""
    terms: dict[str, None] = {}
    for term in query_terms(text):
        terms[term] = None
        base = base_form(term)
        if base is not None:
            terms[base] = None
    return " OR ".join(f'"{term}"' for term in terms)


class KeywordIndex:
    """BM25 keyword search over chunks, in ``path`` (a SQLite file) or in memory.

    Args:
        path: the database file; ``None`` keeps the index in memory.
        weights: BM25 weights of the ``title``, ``heading``, ``body`` and ``context`` columns.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        weights: tuple[float, float, float, float] = DEFAULT_WEIGHTS,
    ) -> None:
        self.path = path
        self.weights = weights
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def _add_blocking(self, chunks: Sequence[Chunk]) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._remove_chunks(db, [c.id for c in chunks])
                for chunk, context in zip(chunks, neighbourhoods(chunks), strict=True):
                    cursor = db.execute(
                        "INSERT INTO rows (chunk_id, document_id) VALUES (?, ?)",
                        (chunk.id, chunk.document_id),
                    )
                    db.execute(
                        "INSERT INTO fts (rowid, title, heading, body, context) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (cursor.lastrowid, chunk.title, chunk.heading, chunk.text, context),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @staticmethod
    def _remove_chunks(db: sqlite3.Connection, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rowids = [
                r[0]
                for r in db.execute(f"SELECT rowid FROM rows WHERE chunk_id IN ({marks})", part)  # noqa: S608  only '?' placeholders are interpolated
            ]
            if rowids:
                holes = ",".join("?" * len(rowids))
                db.execute(f"DELETE FROM fts WHERE rowid IN ({holes})", rowids)  # noqa: S608  only '?' placeholders are interpolated
                db.execute(f"DELETE FROM rows WHERE rowid IN ({holes})", rowids)  # noqa: S608  only '?' placeholders are interpolated

    async def add(self, chunks: Sequence[Chunk]) -> None:
        """Index chunks; a chunk id already indexed is replaced."""
        if chunks:
            await asyncio.to_thread(self._add_blocking, chunks)

    def _delete_blocking(self, document_ids: Sequence[str]) -> int:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                marks = ",".join("?" * len(document_ids))
                ids = [
                    r[0]
                    for r in db.execute(
                        f"SELECT chunk_id FROM rows WHERE document_id IN ({marks})",  # noqa: S608  only '?' placeholders are interpolated
                        list(document_ids),
                    )
                ]
                self._remove_chunks(db, ids)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(ids)

    async def delete(self, document_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        if not document_ids:
            return 0
        return await asyncio.to_thread(self._delete_blocking, document_ids)

    def search_blocking(self, query: str, k: int) -> list[KeywordHit]:
        expression = match_expression(query)
        if not expression or k < 1:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT rows.chunk_id, rows.document_id, bm25(fts, ?, ?, ?, ?) AS rank "
                "FROM fts JOIN rows ON rows.rowid = fts.rowid "
                "WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                (*self.weights, expression, k),
            ).fetchall()
        return [
            KeywordHit(chunk_id, document_id, -float(rank)) for chunk_id, document_id, rank in rows
        ]

    def scores_blocking(self, query: str, chunk_ids: Sequence[str]) -> dict[str, float]:
        """BM25 scores of the given chunks for ``query``; chunks matching no term are left out."""
        expression = match_expression(query)
        if not expression or not chunk_ids:
            return {}
        found: dict[str, float] = {}
        with self._lock:
            for start in range(0, len(chunk_ids), 500):
                part = list(chunk_ids[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    "SELECT rows.chunk_id, bm25(fts, ?, ?, ?, ?) FROM fts "  # noqa: S608  only '?' placeholders are interpolated
                    "JOIN rows ON rows.rowid = fts.rowid "
                    f"WHERE fts MATCH ? AND rows.chunk_id IN ({marks})",
                    (*self.weights, expression, *part),
                )
                found.update((chunk_id, -float(rank)) for chunk_id, rank in rows)
        return found

    async def search(self, query: str, k: int) -> list[KeywordHit]:
        """The ``k`` best chunks by BM25 (higher is better), best first."""
        return await asyncio.to_thread(self.search_blocking, query, k)

    async def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
