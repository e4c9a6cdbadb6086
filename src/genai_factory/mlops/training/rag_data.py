"""Fine-tuning rows in the assistant's own RAG prompt: SQuAD rendered as sources, and the guide.

Every row is exactly what the service sends for a RAG answer
(:func:`genai_factory.rag.prompting.build_rag_messages`: the system prompt, numbered sources, the
instructions, the question), so the model learns the prompt it is served with. The target answer
is short and cites its source by number; when the sources do not hold the answer it is
:data:`RAG_ABSTAIN`, which :func:`genai_factory.mlops.qa.abstained` reads as declining.

Two kinds of rows:

* :func:`squad_rag_examples`: a SQuAD question with its paragraph as one numbered source, and
  sometimes a second paragraph of the same article beside it (in a seeded random order), so the
  model must cite the right number. The answer is the first gold span and its citation
  (``Denver Broncos [2]``); an unanswerable question teaches :data:`RAG_ABSTAIN`.
* :func:`document_examples`: grounded questions built from documents (the bundled user guide, or
  a customer's knowledge base) without any model: the sentences of each chunk are turned into
  questions by a few patterns (``To <do X>, ...`` → ``How do I <do X>?``, ``<Subject> is ...`` →
  ``What is <subject>?``, a section heading → ``What does the guide say about <heading>?``); the
  answer is the sentence itself with its citation. The chunk is one of three sources (the others
  drawn from the rest of the documents); a share of the questions is asked with the right chunk
  left out, to teach declining.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genai_factory.assistant.extractive import DECLINE
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.mlops.training.data import SquadRecord, TrainingExample

#: What the model answers when the sources do not hold the answer.
RAG_ABSTAIN = DECLINE

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(])")
_MARKUP = re.compile(r"\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_TO_DO = re.compile(r"^To ([a-z][^,]{6,80}), (.+)$")
_IS = re.compile(
    r"^((?:The|A|An) [a-z][\w./-]*(?: [\w./-]+){0,3}|`[^`]{2,40}`|[A-Z][\w.-]+(?: [A-Z][\w.-]+)?)"
    r" (is|are) (.{12,})$"
)
_DOES = re.compile(
    r"^(The [a-z][\w-]*(?: [a-z][\w-]*){0,2}) "
    r"(?!is\b|was\b|has\b|does\b|needs\b)([a-z]{3,}s) (.{10,})$"
)
_CLAUSE_WORDS = frozenset({"that", "which", "who", "whose", "when", "if", "of", "in", "on", "for"})
_GENERIC_SUBJECT = re.compile(
    r"^(?:the )?(?:default|result|answer|rest|first|last|same|other|one|difference|reason"
    r"|idea|point|goal|problem|catch|trade-off|outcome|response|output|effect|cost)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DocQuestion:
    """A question built from one chunk, and the sentence that answers it."""

    question: str
    answer: str
    chunk: Chunk
    pattern: str


def _hit(chunk: Chunk) -> ScoredChunk:
    return ScoredChunk(chunk=chunk, score=1.0)


def paragraph_chunk(id: str, title: str, context: str) -> Chunk:
    """A SQuAD paragraph as a retrieved chunk, labelled by its article (``Steam_engine`` →
    ``Steam engine``)."""
    label = title.replace("_", " ")
    return Chunk(
        id=id,
        document_id=title,
        text=context,
        position=0,
        title=label,
        source=title,
        heading=label,
    )


def rag_example(
    question: str,
    sources: Sequence[Chunk],
    answer: str,
    *,
    system_prompt: str,
    source_chars: int,
    source: str,
    id: str,
) -> TrainingExample:
    """One row: the service's RAG prompt over ``sources`` and the answer to learn."""
    from genai_factory.rag.prompting import build_rag_messages

    messages = build_rag_messages(
        question,
        [_hit(c) for c in sources],
        system_prompt=system_prompt,
        max_source_chars=source_chars,
    )
    return TrainingExample(
        messages=tuple({"role": m.role, "content": m.content} for m in messages),
        answer=answer,
        source=source,
        id=id,
    )


def cited(answer: str, number: int) -> str:
    """``answer`` followed by its citation: ``8000 [1]``, ``The port is 8000 [1].``"""
    text = answer.strip()
    if text.endswith((".", "!", "?")):
        return f"{text[:-1].rstrip()} [{number}]{text[-1]}"
    return f"{text} [{number}]"


def squad_rag_examples(
    records: Sequence[SquadRecord],
    *,
    system_prompt: str,
    source_chars: int = 2000,
    second_source_share: float = 0.25,
    seed: int = 0,
) -> list[TrainingExample]:
    """SQuAD questions in the RAG prompt (see module doc); order and choices depend on ``seed``.

    ``source_chars`` cuts each paragraph as the service cuts sources; the default keeps SQuAD
    paragraphs whole (the answer span must stay in the prompt).
    """
    rng = random.Random(seed)
    by_title: dict[str, list[SquadRecord]] = {}
    for record in records:
        by_title.setdefault(record.title, []).append(record)
    examples: list[TrainingExample] = []
    for record in records:
        gold = paragraph_chunk(record.id, record.title, record.context)
        sources = [gold]
        others = [r for r in by_title[record.title] if r.context != record.context]
        if others and rng.random() < second_source_share:
            other = rng.choice(others)
            sources.insert(
                rng.randrange(2), paragraph_chunk(f"{other.id}:other", other.title, other.context)
            )
        number = sources.index(gold) + 1
        answer = RAG_ABSTAIN if record.is_impossible else cited(record.answers[0], number)
        examples.append(
            rag_example(
                record.question,
                sources,
                answer,
                system_prompt=system_prompt,
                source_chars=source_chars,
                source="squad_rag",
                id=record.id,
            )
        )
    return examples


def clean_sentence(text: str) -> str:
    """A sentence without markdown emphasis and links, on one line."""
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def _prose_sentences(chunk: Chunk, limit: int) -> list[str]:
    """Plain sentences of the chunk's first ``limit`` characters (no code, tables, lists)."""
    found: list[str] = []
    for paragraph in chunk.text[:limit].split("\n\n"):
        paragraph = paragraph.strip()
        if not paragraph or paragraph.startswith(("```", "|", "    ", "~~~")):
            continue
        lines = [ln.strip() for ln in paragraph.splitlines()]
        if any(ln.startswith(("- ", "* ", "1. ", "|")) for ln in lines):
            continue
        for sentence in _SENTENCE.split(" ".join(lines)):
            sentence = clean_sentence(sentence)
            if 30 <= len(sentence) <= 260 and sentence.endswith(".") and sentence[:1].isupper():
                found.append(sentence)
    return found


def _leaf_heading(chunk: Chunk) -> str:
    return (chunk.heading or chunk.title).split(" > ")[-1].strip()


_HEADING_TEMPLATES = (
    "What does the guide say about {}?",
    "Tell me about {}.",
    "Explain {}.",
)


def _heading_question(chunk: Chunk, sentence: str) -> DocQuestion | None:
    heading = clean_sentence(_leaf_heading(chunk)).strip("`")
    if not heading or len(heading) > 50 or heading.lower() in {"overview", "example", "examples"}:
        return None
    template = _HEADING_TEMPLATES[sum(map(ord, heading)) % len(_HEADING_TEMPLATES)]
    topic = heading if heading[:2].isupper() else heading[0].lower() + heading[1:]
    return DocQuestion(template.format(topic), sentence, chunk, "heading")


def _lower_article(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    return f"{first.lower()} {rest}" if first in {"The", "A", "An"} else subject


def _sentence_question(chunk: Chunk, sentence: str) -> DocQuestion | None:
    match = _TO_DO.match(sentence)
    if match:
        action = match.group(1).rstrip(" ,")
        return DocQuestion(f"How do I {action}?", sentence, chunk, "to_do")
    match = _IS.match(sentence)
    if match and _plain_subject(match.group(1)):
        subject = _lower_article(match.group(1))
        return DocQuestion(f"What {match.group(2)} {subject}?", sentence, chunk, "is")
    match = _DOES.match(sentence)
    if match and _plain_subject(match.group(1)):
        subject = _lower_article(match.group(1))
        return DocQuestion(f"What does {subject} do?", sentence, chunk, "does")
    return None


def _plain_subject(subject: str) -> bool:
    """A noun phrase worth asking about: no clause inside, not a generic word."""
    words = subject.lower().split()
    if _CLAUSE_WORDS & set(words[1:]) or _GENERIC_SUBJECT.match(subject):
        return False
    return len(subject.strip("`")) >= 3


def document_questions(chunks: Iterable[Chunk], *, source_chars: int = 600) -> list[DocQuestion]:
    """Every question the patterns find, one per sentence at most, plus one per heading."""
    questions: list[DocQuestion] = []
    headings: set[tuple[str, str]] = set()
    for chunk in chunks:
        sentences = _prose_sentences(chunk, source_chars)
        section = (chunk.document_id, chunk.heading)
        if section not in headings and sentences and chunk.text.lstrip()[:1].isupper():
            first = _heading_question(chunk, sentences[0])
            if first is not None and chunk.text.lstrip().startswith(sentences[0][:20]):
                questions.append(first)
        headings.add(section)
        for sentence in sentences:
            found = _sentence_question(chunk, sentence)
            if found is not None:
                questions.append(found)
    seen: set[str] = set()
    unique = []
    for q in questions:
        if q.question.lower() not in seen:
            seen.add(q.question.lower())
            unique.append(q)
    return unique


def document_examples(
    chunks: Sequence[Chunk],
    *,
    system_prompt: str,
    source_chars: int = 600,
    sources: int = 3,
    abstain_share: float = 0.2,
    repeats: int = 2,
    seed: int = 0,
) -> list[TrainingExample]:
    """Grounded rows from document chunks (see module doc), in the service's prompt.

    Each question gets ``sources`` chunks: its own at a random position among others from the
    rest of the documents, or (for ``abstain_share`` of the questions) only others, answered with
    :data:`RAG_ABSTAIN`. Distractors never share the question's section heading. Each question is
    asked ``repeats`` times, with other sources each time.
    """
    rng = random.Random(seed)
    examples: list[TrainingExample] = []
    questions = document_questions(chunks, source_chars=source_chars)
    for index, q in enumerate([q for q in questions for _ in range(repeats)]):
        pool = [c for c in chunks if c.heading != q.chunk.heading]
        if len(pool) < sources:
            continue
        abstain = rng.random() < abstain_share
        picked = rng.sample(pool, sources if abstain else sources - 1)
        if abstain:
            answer = RAG_ABSTAIN
        else:
            position = rng.randrange(sources)
            picked.insert(position, q.chunk)
            answer = cited(q.answer, position + 1)
        examples.append(
            rag_example(
                q.question,
                picked,
                answer,
                system_prompt=system_prompt,
                source_chars=source_chars,
                source=f"docs_{q.pattern}" + ("_abstain" if abstain else ""),
                id=f"docs-{index}",
            )
        )
    return examples


def document_chunks(paths: Iterable[Path], *, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """The chunks the service would index from ``paths`` (same loader and splitter)."""
    from genai_factory.rag.loaders import load_path
    from genai_factory.rag.splitting import split_document

    chunks: list[Chunk] = []
    for path in paths:
        for document in load_path(path):
            chunks += split_document(document, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    return chunks
