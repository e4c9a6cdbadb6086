"""Which route answers a question in ``auto`` mode: a small, measured, explainable heuristic.

The agent's job is the data in its database and arithmetic; everything else (questions about the
documentation, small talk, general knowledge) stays with retrieval and chat. So the score is
*schema-aware*: words that sound like data questions (``how many``, ``which``, ``most``) only
count when the question also names the configured database's tables or columns.
:func:`agent_score` adds up features of the question, each with a fixed weight:

* an arithmetic expression (``17 * 23``, ``15% of 240``, ``square root of``, ``sum of 12.5``): +3;
* explicit SQL (``SELECT ... FROM``, ``sql``, ``query the database``): +3;
* a table of the agent's database named (or its singular/plural): +2;
* its column names: +1 each, at most +2;
* a lookup of a column (``the email of Hedy Lamarr``, ``the price of the mouse``): +2;
* data words (``how many``, ``total``, ``average``, ``most``, ``which`` ...) or possessives
  (``our``, ``we``): +1, only when a table or column was named;
* how-to phrasing (``how do I``, ``configure``, ``install`` ...): -3;
* the product's own vocabulary (``vector store``, ``server``, ``model``, ``endpoint``, ``index``
  ...), words no shop database question needs: -2.

A bare mention of "database" is no longer a signal: "Which vector database server can replace the
embedded vector store?" is a question about the documentation. Without data terms (no database
configured) only arithmetic and explicit SQL reach the agent. A score of at least
:data:`AGENT_THRESHOLD` routes to the agent; otherwise the assistant keeps its retrieval rule (RAG
when a source scores high enough, chat otherwise). The labelled questions in
``tests/assistant/test_routing.py`` measure it (accuracy printed and guarded).
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
    r"|\d\s*%\s*of\b|\bpercent of\b|\bsum of\s+-?\d"
    r"|\b(?:plus|minus|times|multiplied by|divided by|squared|square root|cubed|to the power of)\b"
    r"|\b(?:sqrt|compute|calculate)\b",
    re.IGNORECASE,
)
_SQL = re.compile(
    r"\bselect\b.+\bfrom\b|\bsql\b|\bquery (?:the|my|our) (?:database|db)\b",
    re.IGNORECASE | re.DOTALL,
)
_DATA = re.compile(
    r"\b(?:how many|how much|number of|count|total|sum|average|mean|median|maximum|minimum"
    r"|most|least|highest|lowest|biggest|largest|smallest|cheapest|top \d+|list all|list the"
    r"|show me|which|who|spent|revenue|sold|per|our|we|us)\b",
    re.IGNORECASE,
)
_HOW_TO = re.compile(
    r"\b(?:how do i|how can i|how to|how does|configure|configuration|install|set up|setting"
    r"|settings|environment variable|endpoint|api key|command line|genai|documentation"
    r"|retr(?:y|ies)|fallback|index(?:ing)?|embedding|tokens?)\b",
    re.IGNORECASE,
)
#: The product's own vocabulary: questions about the service, not about the shop's data.
_PRODUCT = re.compile(
    r"\b(?:vector|vectors|store|server|servers|service|model|models|llm|endpoint|api|port"
    r"|index|embeddings?|chunks?|prompts?|guards?|requests?|responses?|docker|kubernetes|helm"
    r"|mlflow|registry|adapter|fine-?tun\w*|training|drift|circuit breaker|breaker|gateway"
    r"|rate limits?|budgets?|qdrant|redis|postgres(?:ql)?|sqlite|cache|logs?|metrics|traces?"
    r"|dashboards?|cli|streaming|citations?|sources?|knowledge base|retrieval|rag|agent|tools?"
    r"|licen[cs]es?|licensing|subscriptions?|editions?|support plans?|pricing plans?)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z][a-z0-9_]+")
_LOOKUP = r"\b(?:the |an? )?(?:{columns}) (?:of|for) (?:the |an? )?(?P<name>\S+)"


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

    def add(points: int, name: str) -> None:
        nonlocal score
        score += points
        fired.append(name)

    if _ARITHMETIC.search(query):
        add(3, "arithmetic")
    if _SQL.search(query):
        add(3, "sql")
    if terms is not None:
        _data_features(query, terms, add)
    if _HOW_TO.search(query):
        add(-3, "how_to")
    if _PRODUCT.search(query):
        add(-2, "product")
    return score, fired


def _data_features(query: str, terms: DataTerms, add: Any) -> None:
    """The schema-aware features: tables, columns, lookups, then data words if any fired."""
    words = set(_WORD.findall(query.lower()))
    named = False
    if words & terms.tables:
        add(2, "table")
        named = True
    columns = words & terms.columns
    if columns:
        add(min(len(columns), 2), "column")
        named = True
        pattern = _LOOKUP.format(columns="|".join(sorted(map(re.escape, columns))))
        lookup = re.search(pattern, query, re.IGNORECASE)
        if lookup:
            add(2, "lookup")
    if named and _DATA.search(query):
        add(1, "data_word")


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
