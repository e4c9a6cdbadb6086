"""Which route answers a question in ``auto`` mode: a small, measured, explainable heuristic.

:func:`agent_score` adds up features of the question, each with a fixed weight:

* an arithmetic expression (``17 * 23``, ``15% of 240``, ``square root of``): +3;
* SQL words (``SELECT ... FROM``, ``sql``, ``query the database``): +3;
* data words (``how many``, ``total``, ``average``, ``most``, ``cheapest``, ``list all`` ...): +1;
* terms of the agent's data (table names and their singulars: +2; column names: +1 each,
  at most +2), taken from the database schema;
* how-to phrasing (``how do I``, ``configure``, ``install``, ``endpoint`` ...): -3.

A score of at least :data:`AGENT_THRESHOLD` routes to the agent; otherwise the assistant keeps its
retrieval rule (RAG when a source scores high enough, chat otherwise). The features were written
before being scored against the labelled questions in ``tests/assistant/test_routing.py``, whose
accuracy that test reports and guards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from genai_factory.agents.sql_results import SchemaInfo
from genai_factory.agents.tools import Tool, call_tool
from genai_factory.exceptions import InvalidRequestError, ToolError

log = structlog.get_logger(__name__)

AGENT_THRESHOLD = 3

_ARITHMETIC = re.compile(
    r"\d\s*(?:[-+*/×÷^x]|\*\*)\s*\(?\s*\d"
    r"|\d\s*%\s*of\b|\bpercent of\b"
    r"|\b(?:plus|minus|times|multiplied by|divided by|squared|square root|cubed)\b"
    r"|\b(?:sqrt|compute|calculate)\b",
    re.IGNORECASE,
)
_SQL = re.compile(
    r"\bselect\b.+\bfrom\b|\bsql\b|\bquery the (?:database|db)\b|\bdatabase\b|\btable rows?\b",
    re.IGNORECASE | re.DOTALL,
)
_DATA = re.compile(
    r"\b(?:how many|how much|number of|count|total|sum|average|mean|median|maximum|minimum"
    r"|most|least|highest|lowest|biggest|largest|smallest|cheapest|top \d+|list all|list the"
    r"|show me|which|who|spent|revenue|sold|per)\b",
    re.IGNORECASE,
)
_HOW_TO = re.compile(
    r"\b(?:how do i|how can i|how to|how does|configure|configuration|install|set up|setting"
    r"|settings|environment variable|endpoint|api key|command line|genai|documentation"
    r"|retr(?:y|ies)|fallback|index(?:ing)?|embedding|tokens?)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z][a-z0-9_]+")


@dataclass(frozen=True)
class DataTerms:
    """Words that name the agent's data: table names (with singulars) and column names."""

    tables: frozenset[str] = field(default_factory=frozenset)
    columns: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_names(cls, tables: Iterable[str], columns: Iterable[str]) -> DataTerms:
        """Terms from raw names: lower-cased, ``snake_case`` split, plurals and singulars."""
        table_words = frozenset(_variants(tables))
        return cls(table_words, frozenset(_variants(columns)) - _GENERIC - table_words)


#: Column names too common in ordinary questions to say anything.
_GENERIC = frozenset({"id", "name", "names", "type", "types", "date", "dates", "value", "values"})


def _variants(names: Iterable[str]) -> set[str]:
    words: set[str] = set()
    for name in names:
        for part in [name.lower(), *name.lower().split("_")]:
            if len(part) < 3:
                continue
            words.add(part)
            words.add(part[:-1] if part.endswith("s") else part + "s")
    return words


def agent_score(query: str, terms: DataTerms | None = None) -> tuple[int, list[str]]:
    """The agent score of ``query`` and the features that fired (for logs and tests)."""
    fired: list[str] = []
    score = 0
    if _ARITHMETIC.search(query):
        score, fired = score + 3, [*fired, "arithmetic"]
    if _SQL.search(query):
        score, fired = score + 3, [*fired, "sql"]
    if _DATA.search(query):
        score, fired = score + 1, [*fired, "data_word"]
    words = set(_WORD.findall(query.lower()))
    if terms is not None:
        if words & terms.tables:
            score, fired = score + 2, [*fired, "table"]
        columns = len(words & terms.columns)
        if columns:
            score, fired = score + min(columns, 2), [*fired, "column"]
    if _HOW_TO.search(query):
        score, fired = score - 3, [*fired, "how_to"]
    return score, fired


def wants_agent(query: str, terms: DataTerms | None = None) -> bool:
    """Whether ``auto`` mode should send ``query`` to the agent."""
    return agent_score(query, terms)[0] >= AGENT_THRESHOLD


async def data_terms_for(tools: Mapping[str, Tool[Any]]) -> DataTerms | None:
    """The data terms of the agent's database (via its ``sql_schema`` tool), if it has one."""
    tool = tools.get("sql_schema")
    if tool is None:
        return None
    try:
        schema = await call_tool(tool, {})
    except (ToolError, InvalidRequestError) as exc:
        log.warning("routing_schema_unavailable", error=exc.message)
        return None
    if not isinstance(schema, SchemaInfo):
        return None
    columns = [column.name for table in schema.tables for column in table.columns]
    return DataTerms.from_names([table.name for table in schema.tables], columns)
