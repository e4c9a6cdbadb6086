"""``knowledge_search``: the agent's view of the knowledge index (RAG retrieval as a tool).

The tool takes any :class:`Searcher` (``async search(query, k)`` returning scored chunks, as
:class:`~genai_factory.rag.index.KnowledgeIndex` does), so it keeps working whatever retrieval the
index does inside. It answers with numbered excerpts, one per line group, each with its title,
source and score, short enough to fit a small model's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from genai_factory.messages import ScoredChunk

MAX_QUERY_CHARS = 300


class Searcher(Protocol):
    """Anything that finds the chunks most similar to a query (a ``KnowledgeIndex``)."""

    async def search(self, query: str, k: int = 4) -> list[ScoredChunk]:
        """The ``k`` chunks most similar to ``query``, best first."""
        ...


class KnowledgeSearchArgs(BaseModel):
    """Arguments of ``knowledge_search``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for in the documentation, in a few words.",
    )


def render_hits(hits: Sequence[ScoredChunk], excerpt_chars: int) -> str:
    """``[1] Title (source.md, score 0.71): excerpt ...`` for each hit, or a no-result line."""
    if not hits:
        return "No matching documents."
    lines = []
    for rank, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        text = " ".join(chunk.text.split())
        if len(text) > excerpt_chars:
            text = text[: excerpt_chars - 1].rstrip() + "…"
        heading = chunk.heading or chunk.title
        lines.append(f"[{rank}] {heading} ({chunk.source}, score {hit.score:.2f}): {text}")
    return "\n".join(lines)


class KnowledgeSearchTool:
    """``knowledge_search``: the passages of the knowledge base most similar to a query.

    Args:
        searcher: the knowledge index (or any :class:`Searcher`).
        k: passages returned per search.
        excerpt_chars: characters of each passage shown to the model.
        timeout_s: longest a search may take (embedding the query included).
    """

    name = "knowledge_search"
    description = (
        "Search the documentation (the knowledge base) for passages about a topic. "
        "Use it for how-to and product questions."
    )
    args_schema: type[KnowledgeSearchArgs] = KnowledgeSearchArgs

    def __init__(
        self,
        searcher: Searcher,
        *,
        k: int = 3,
        excerpt_chars: int = 300,
        timeout_s: float = 10.0,
    ) -> None:
        self.searcher = searcher
        self.k = k
        self.excerpt_chars = excerpt_chars
        self.timeout_s = timeout_s

    async def run(self, args: KnowledgeSearchArgs) -> str:
        """Search and render the best passages."""
        hits = await self.searcher.search(args.query, self.k)
        return render_hits(hits, self.excerpt_chars)
