"""``train agent-data``: grounded training rows that teach the agent one database.

Every example is a question from :mod:`~genai_factory.mlops.training.agent_questions`, the SQL that
answers it (run for real through the agent's read-only ``sql_query`` tool, so every label is the
database's own answer) and the sentence that states the result. It is rendered as the model calls
of the agent's two-stage format (:class:`~genai_factory.agents.staged.StagedJsonFormat`), built by
that format itself from the same preloaded schema and values the agent puts in its prompts:

1. ``choose_tool``: the first choice, ``{"action": "sql_query"}``;
2. ``sql``: the query, ``{"sql": "..."}``, in the grammar's shape;
3. ``choose_answer``: after the observation, ``{"action": "final_answer"}``;
4. ``answer``: the one sentence stating the value, copied as the observation shows it.

So training teaches exactly the prompts and replies the agent parses. The choose prompts list the
tools on offer; half of the examples offer ``knowledge_search`` too (as the service does), half do
not (as ``bench/agent_shop.py`` does). Questions and queries given to :func:`build_agent_rows`
as ``exclude`` (an evaluation set) never appear: a candidate is dropped when its question, its
SQL, or its query's fingerprint (the tables, columns, functions and values it uses, aliases
ignored) matches one of them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_factory.agents.actions import AgentAction
from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.formats import Exchange
from genai_factory.agents.knowledge import KnowledgeSearchTool
from genai_factory.agents.preload import QUERY_TOOL, SCHEMA_TOOL, Preload, preload_database
from genai_factory.agents.prompting import render_observation
from genai_factory.agents.sql_results import SchemaInfo, SQLResult
from genai_factory.agents.staged import StagedJsonFormat
from genai_factory.agents.steps import FINAL_ANSWER
from genai_factory.agents.tools import SqlQueryArgs, SqlQueryTool, SqlSchemaTool, Tool
from genai_factory.exceptions import InvalidRequestError, ToolError
from genai_factory.messages import ChatResponse, Message, ScoredChunk
from genai_factory.mlops.training.agent_questions import (
    Candidate,
    candidate_questions,
    normalize,
)
from genai_factory.mlops.training.agent_schema import profile_database, read_schema

#: ``kind`` of every row ``train agent-data`` writes (``train llm`` recognises it).
AGENT_ROW_KIND = "agent_sql"
#: The agent's default observation size (``ReActAgent(observation_chars=...)``).
OBSERVATION_CHARS = 700
STAGES = ("choose_tool", "sql", "choose_answer", "answer")
#: Questions per kind at most (``--per-kind``), so no kind of question crowds out the others.
PER_KIND = 24
_TOKEN = re.compile(r"'[^']*'|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(?:\.[0-9]+)?|\*")
_KEYWORDS = frozenset(
    [
        "select",
        "where",
        "order",
        "by",
        "desc",
        "limit",
        "group",
        "distinct",
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "join",
        "*",
        ">",
        "<",
        "=",
        "!=",
    ]
)


class _NoIndex:
    """Stands in for the knowledge index: only the tool's name and description are rendered."""

    async def search(self, query: str, k: int = 4) -> list[ScoredChunk]:
        return []


@dataclass
class AgentDataReport:
    """What ``train agent-data`` wrote."""

    out: str
    database: str
    examples: int
    rows: int
    candidates: int
    excluded: int
    off_grammar: int
    empty: int
    kinds: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    capped: int = 0
    per_kind: int | None = PER_KIND
    choice_every: int = 1


def query_fingerprint(sql: str, vocabulary: Iterable[str]) -> frozenset[str]:
    """What a query uses: its schema names (``vocabulary``), keywords, functions and literals.

    Table aliases and qualifiers drop out, so ``JOIN customers c ... c.name = 'Ada'`` and
    ``JOIN customers ... customers.name = 'Ada'`` have the same fingerprint.
    """
    names = {v.lower() for v in vocabulary}
    found = set()
    for token in _TOKEN.findall(sql.replace("(", " ( ").replace(")", " ) ")):
        if token.startswith("'") or token[:1].isdigit() or token[:1] == "-":
            found.add(token)
        elif token.lower() in names or token.lower() in _KEYWORDS:
            found.add(token.lower())
    found |= {op for op in ("!=", "<=", ">=", ">", "<", "=") if op in sql}
    return frozenset(found)


def schema_vocabulary(schema: SchemaInfo) -> set[str]:
    """The table and column names of ``schema``."""
    return {t.name for t in schema.tables} | {c.name for t in schema.tables for c in t.columns}


@dataclass
class Exclusions:
    """Questions and queries that must not appear in the training data."""

    questions: set[str] = field(default_factory=set)
    sql: set[str] = field(default_factory=set)
    fingerprints: set[frozenset[str]] = field(default_factory=set)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]], vocabulary: Iterable[str]) -> Exclusions:
        words = list(vocabulary)
        found = cls()
        for question, sql in pairs:
            if question:
                found.questions.add(normalize(question))
            if sql:
                found.sql.add(normalize(sql))
                found.fingerprints.add(query_fingerprint(sql, words))
        return found

    def collides(self, candidate: Candidate, vocabulary: Iterable[str]) -> bool:
        return (
            normalize(candidate.question) in self.questions
            or normalize(candidate.sql) in self.sql
            or query_fingerprint(candidate.sql, vocabulary) in self.fingerprints
        )


def read_exclusions(path: Path) -> list[tuple[str, str]]:
    """(question, sql) pairs of a JSONL file whose rows have ``question`` and/or ``sql``."""
    if not path.is_file():
        raise InvalidRequestError(f"no such file: {path}")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidRequestError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(row, dict) or not (row.get("question") or row.get("sql")):
            raise InvalidRequestError(f"{path}:{number}: a row needs 'question' or 'sql'")
        pairs.append((str(row.get("question") or ""), str(row.get("sql") or "")))
    return pairs


def _message(message: Message) -> dict[str, str]:
    return {"role": message.role, "content": message.content}


def first_value(result: SQLResult) -> str:
    """The first cell of a result as the observation shows it."""
    value = result.rows[0][0]
    return "NULL" if value is None else str(value)


@dataclass(frozen=True)
class _Context:
    """What every rendering needs: the preloaded hints and the tools offered to the model."""

    hints: list[str]
    input_schemas: dict[str, dict[str, Any]]
    offers: tuple[list[Tool[Any]], ...]


def render_rows(
    candidate: Candidate, result: SQLResult, context: _Context, rng: random.Random
) -> list[dict[str, Any]]:
    """The four model calls of one solved question, each as a training row."""
    staged = StagedJsonFormat(rng.choice(context.offers), context.input_schemas)
    question, hints = candidate.question, context.hints
    query = AgentAction(tool=QUERY_TOOL, input={"sql": candidate.sql})
    # the time a query took varies from run to run; a fixed 0 ms keeps the rows deterministic
    observation = render_observation(
        result.model_copy(update={"elapsed_ms": 0.0}), OBSERVATION_CHARS
    )
    choice = json.dumps({"action": QUERY_TOOL})
    done = [Exchange(ChatResponse(text=choice, model="agent-data"), [(query, observation)])]
    value = first_value(result)
    calls = (
        (staged.messages(question, hints, [], final=False), choice),
        (
            staged.input_messages(AgentAction(tool=QUERY_TOOL), question, hints, []),
            json.dumps({"sql": candidate.sql}),
        ),
        (staged.messages(question, hints, done, final=False), json.dumps({"action": FINAL_ANSWER})),
        (
            staged.input_messages(AgentAction(tool=FINAL_ANSWER), question, hints, done),
            candidate.answer.format(value=value),
        ),
    )
    digest = hashlib.sha256(f"{question}\n{candidate.sql}".encode()).hexdigest()[:12]
    return [
        {
            "id": f"agent-{digest}-{stage}",
            "source": f"agent:{candidate.kind}",
            "kind": AGENT_ROW_KIND,
            "stage": stage,
            "question": question,
            "sql": candidate.sql,
            "value": value,
            "messages": [_message(m) for m in messages],
            "answer": answer,
        }
        for stage, (messages, answer) in zip(STAGES, calls, strict=True)
    ]


async def _preload(database: str) -> tuple[Preload, SchemaInfo]:
    tools: dict[str, Tool[Any]] = {
        SCHEMA_TOOL: SqlSchemaTool(database),
        QUERY_TOOL: SqlQueryTool(database),
    }
    preload = await preload_database(tools, constrain_sql=True, observation_chars=OBSERVATION_CHARS)
    schema_step = preload.steps[0] if preload.steps else None
    if schema_step is None or not schema_step.ok:
        reason = schema_step.observation if schema_step else "no schema"
        raise InvalidRequestError(f"cannot read the database {database}: {reason}")
    if QUERY_TOOL not in preload.input_schemas:
        raise InvalidRequestError(f"no table to ask about in the database {database}")
    return preload, await read_schema(database)


def sql_pattern(preload: Preload) -> re.Pattern[str]:
    """The agent's SQL grammar (a regular expression) for this database."""
    pattern = preload.input_schemas[QUERY_TOOL]["properties"]["sql"]["pattern"]
    return re.compile(str(pattern))


def balanced(candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """``candidates`` shuffled, then every query's first phrasing before any query's second."""
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    seen: dict[str, int] = {}
    ranked = []
    for candidate in shuffled:
        key = normalize(candidate.sql)
        ranked.append((seen.get(key, 0), candidate))
        seen[key] = seen.get(key, 0) + 1
    ranked.sort(key=lambda pair: pair[0])  # stable: the shuffle decides within a rank
    return [candidate for _, candidate in ranked]


async def build_agent_rows(
    database: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    exclude: Sequence[tuple[str, str]] = (),
    per_kind: int | None = PER_KIND,
    choice_every: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], AgentDataReport]:
    """Training rows for ``database`` and a report of what was kept.

    Each question gives four rows; ``choice_every=n`` keeps the two choice rows (``choose_tool``,
    ``choose_answer``) of every n-th question only. ``per_kind``: at most this many questions of
    one kind (``None``: no cap); the queries of a kind get their first phrasing before any gets a
    second.
    """
    preload, schema = await _preload(database)
    vocabulary = schema_vocabulary(schema)
    grammar = sql_pattern(preload)
    exclusions = Exclusions.of(exclude, vocabulary)
    profiles = await profile_database(database, schema)
    candidates = candidate_questions(profiles, seed)
    report = AgentDataReport(
        out="",
        database=database,
        examples=0,
        rows=0,
        candidates=len(candidates),
        excluded=0,
        off_grammar=0,
        empty=0,
        seed=seed,
    )
    kept = []
    for candidate in candidates:
        if exclusions.collides(candidate, vocabulary):
            report.excluded += 1
        elif not grammar.fullmatch(candidate.sql):
            report.off_grammar += 1
        else:
            kept.append(candidate)
    rng = random.Random(seed)
    tool = SqlQueryTool(database)
    chosen: list[tuple[Candidate, SQLResult]] = []
    target = min(limit, len(kept)) if limit else len(kept)
    for candidate in balanced(kept, rng):
        if len(chosen) >= target:
            break
        if per_kind is not None and report.kinds.get(candidate.kind, 0) >= per_kind:
            report.capped += 1
            continue
        result = await _run(tool, candidate.sql)
        if result is None:
            report.empty += 1
            continue
        chosen.append((candidate, result))
        report.kinds[candidate.kind] = report.kinds.get(candidate.kind, 0) + 1
        if on_progress is not None:
            on_progress(len(chosen), target)
    rng.shuffle(chosen)
    context = _Context(preload.hints, preload.input_schemas, _offers())
    rows: list[dict[str, Any]] = []
    for index, (candidate, result) in enumerate(chosen):
        rendered = render_rows(candidate, result, context, rng)
        if index % max(1, choice_every):
            rendered = [r for r in rendered if not r["stage"].startswith("choose_")]
        rows += rendered
    report.examples = len(chosen)
    report.rows = len(rows)
    report.choice_every = max(1, choice_every)
    report.per_kind = per_kind
    return rows, report


async def _run(tool: SqlQueryTool, sql: str) -> SQLResult | None:
    """The result of ``sql``, or ``None`` when it has no value to state."""
    try:
        result = await tool.run(SqlQueryArgs(sql=sql))
    except (ToolError, InvalidRequestError):
        return None
    if not result.rows or result.rows[0][0] is None:
        return None
    return result


def _offers() -> tuple[list[Tool[Any]], ...]:
    """The tool lists the choose prompt shows: without and with ``knowledge_search``."""
    query: Tool[Any] = SqlQueryTool("unused")
    base: list[Tool[Any]] = [query, CalculatorTool()]
    return (base, [*base, KnowledgeSearchTool(_NoIndex())])


def write_rows(rows: Iterable[dict[str, Any]], out: Path) -> int:
    """Write ``rows`` as JSONL; returns how many."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def all_agent_rows(path: Path) -> bool:
    """Whether every row of the JSONL file ``path`` was written by ``train agent-data``."""
    found = False
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return False
            if not isinstance(row, dict) or row.get("kind") != AGENT_ROW_KIND:
                return False
            found = True
    return found
