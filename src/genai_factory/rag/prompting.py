"""RAG prompts with numbered sources, and the citations an answer makes to them.

Pure functions, no I/O: easy to test and to change per model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence

from genai_factory.messages import Citation, Message, ScoredChunk

RAG_INSTRUCTIONS = (
    "Using only the context above, answer in two sentences and cite the source number like [1]. "
    "If the context does not contain the answer, say that you do not know."
)

_CITATION = re.compile(r"\[(\d{1,2})\]")
#: A citation-like mark after a space: `` [1]``, `` [12]``, `` [I]`` (``x[0]`` is not one).
_CITATION_MARK = re.compile(r"[ \t]+\[[0-9A-Za-z]{1,3}\]")
#: The longest mark :func:`without_citations` holds back while it may still be one.
_MARK_CHARS = 5
#: Small models sometimes echo the prompt's layout; an answer ends where a new question would begin.
RAG_STOP = ("\nQuestion:", "\nContext:")


def format_sources(hits: Sequence[ScoredChunk], *, max_chars: int = 900) -> str:
    """Sources as ``[n] Title — heading`` blocks, each cut to ``max_chars`` characters."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        label = chunk.heading or chunk.title
        text = (
            chunk.text if len(chunk.text) <= max_chars else chunk.text[:max_chars].rstrip() + " …"
        )
        blocks.append(f"[{number}] {label}\n{text}")
    return "\n\n".join(blocks)


def build_rag_messages(
    question: str,
    hits: Sequence[ScoredChunk],
    *,
    system_prompt: str,
    history: Sequence[Message] = (),
    max_source_chars: int = 900,
) -> list[Message]:
    """System prompt, prior turns, then one user turn: the sources, the instructions, the question.

    Sources come first and the instructions right before the question: small models follow an
    instruction best when it is the last thing they read (measured on SmolLM2-135M).
    """
    sources = format_sources(hits, max_chars=max_source_chars)
    user = f"Context:\n{sources}\n\n{RAG_INSTRUCTIONS}\nQuestion: {question}"
    return [Message.system(system_prompt), *history, Message.user(user)]


def build_chat_messages(
    question: str, *, system_prompt: str, history: Sequence[Message] = ()
) -> list[Message]:
    return [Message.system(system_prompt), *history, Message.user(question)]


def cited_numbers(answer: str, source_count: int) -> set[int]:
    """The source numbers ``[n]`` that the answer cites and that exist."""
    return {int(n) for n in _CITATION.findall(answer) if 1 <= int(n) <= source_count}


def citations_for(
    answer: str, hits: Sequence[ScoredChunk], *, excerpt_chars: int = 300
) -> list[Citation]:
    """One citation per source given to the model, flagged ``cited`` when the answer cites it."""
    cited = cited_numbers(answer, len(hits))
    result = []
    for number, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        excerpt = (
            chunk.text if len(chunk.text) <= excerpt_chars else chunk.text[:excerpt_chars] + "…"
        )
        result.append(
            Citation(
                index=number,
                document_id=chunk.document_id,
                chunk_id=chunk.id,
                title=chunk.title,
                source=chunk.source,
                excerpt=excerpt,
                score=round(hit.score, 4),
                cited=number in cited,
            )
        )
    return result


def strip_citations(text: str) -> str:
    """``text`` without citation marks (``[1]``, ``[I]``): an answer given without sources has
    nothing to cite, and a model tuned on sourced answers sometimes adds them anyway."""
    return _CITATION_MARK.sub("", text)


#: A stretch of at least 8 characters written three or more times in a row: a small model caught
#: in a loop ("I don't know a joke: I don't know a joke: ...").
_LOOP = re.compile(r"(.{8,200}?)\1{2,}", re.DOTALL)


def collapse_repeats(text: str) -> str:
    """``text`` with a stretch the model wrote three or more times in a row kept once, and a
    copy cut off by the token limit after it dropped; unchanged when nothing repeats so."""
    found = _LOOP.search(text)
    if found is None:
        return text
    segment, rest = found.group(1), text[found.end() :]
    if segment.startswith(rest) or segment.strip().startswith(rest.strip()):
        rest = ""  # the start of one more copy, cut off
    kept = (text[: found.start()] + segment + rest).rstrip()
    if rest:
        return kept
    kept = kept.rstrip(" :;,-")
    return kept if kept.endswith((".", "!", "?", "]", ")", "`")) else kept + "."


async def without_citations(pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
    """The streamed pieces with citation marks removed, even when a mark spans pieces: text from
    an open ``[`` on is held back until it is known not to be a mark (at most a few characters).
    The first piece is passed on even when empty (it tells that the model has started)."""
    held, first = "", True
    try:
        async for piece in pieces:
            held = strip_citations(held + piece)
            cut = _open_mark(held)
            ready, held = held[:cut], held[cut:]
            if ready or first:
                yield ready
            first = False
        if held := strip_citations(held):
            yield held
    finally:
        await pieces.aclose()


def _open_mark(text: str) -> int:
    """Where a citation mark may be starting at the end of ``text`` (``len(text)`` if nowhere)."""
    start = text.rfind("[")
    if start < 0 or len(text) - start > _MARK_CHARS or "]" in text[start:]:
        start = len(text)
    elif start > 0 and text[start - 1] not in " \t":
        return len(text)  # ``x[``: not a mark
    # the spaces before a mark go with it (and trailing spaces may precede one)
    while start > 0 and text[start - 1] in " \t":
        start -= 1
    return start
