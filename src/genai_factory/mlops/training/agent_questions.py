"""Questions about one database, with the SQL that answers them, made from its schema and values.

:func:`profile_database` reads the schema through the agent's own ``sql_schema`` tool and its values
through ``sql_query`` (read-only, so any configured database is safe to read) and sorts the columns:
numbers (not keys), dates, *categories* (text with few distinct values, the values the agent's SQL
grammar allows) and *names* (a text column unique per row, such as ``customers.name``).
:func:`candidate_questions` turns that profile into (question, SQL, answer template) candidates
from templates: counts, counts with a filter on a category, distinct counts, lookups by name,
superlatives, sums, averages, minimum and maximum (alone or with a filter), the category with the
most rows, joins along foreign keys, and number and date ranges. Each template has several
phrasings; which one a candidate gets depends on the seed. Every SQL is written in the shape the
agent's grammar (:mod:`~genai_factory.agents.sql_grammar`) lets the model write.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from genai_factory.agents.sql_grammar import known_values, values_query
from genai_factory.agents.sql_results import ColumnInfo, SchemaInfo, SQLResult, TableInfo
from genai_factory.agents.tools import SqlQueryArgs, SqlQueryTool, SqlSchemaArgs, SqlSchemaTool

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9 _@.%-]{1,40}")
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")
#: Most names sampled per name column, and numbers per number column.
SAMPLE_VALUES = 40


@dataclass
class TableProfile:
    """The columns of one table sorted by what a question can do with them."""

    name: str
    rows: int
    key: str | None
    numbers: list[str] = field(default_factory=list)
    dates: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    number_values: dict[str, list[float]] = field(default_factory=dict)
    #: Foreign keys: (own column, parent table, parent column).
    parents: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def name_column(self) -> str | None:
        """The column that names a row (``name`` or ``title`` first)."""
        preferred = [c for c in self.names if c in ("name", "title")]
        return (preferred or list(self.names) or [None])[0]


@dataclass(frozen=True)
class Candidate:
    """A question, the SQL that answers it, and the sentence its answer goes into (``{value}``)."""

    kind: str
    question: str
    sql: str
    answer: str


def _words(identifier: str) -> str:
    return identifier.replace("_", " ").strip()


def singular(table: str) -> str:
    """``order_items`` → ``order item`` (a plain English guess)."""
    words = _words(table)
    if words.endswith("ies"):
        return words[:-3] + "y"
    if words.endswith(("ses", "xes")):
        return words[:-2]
    return words[:-1] if words.endswith("s") and not words.endswith("ss") else words


def plural(words: str) -> str:
    """``category`` → ``categories``, ``status`` → ``statuses``, ``country`` → ``countries``."""
    if words.endswith("y") and words[-2:-1] not in ("a", "e", "o", "u"):
        return words[:-1] + "ies"
    if words.endswith(("s", "x", "ch", "sh")):
        return words + "es"
    return words + "s"


def sql_literal(value: str | float) -> str:
    """A value as the agent's grammar writes it: quoted text, or a number with ≤ 4 decimals."""
    if isinstance(value, str):
        return "'" + value + "'"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0")


def _kind(column: ColumnInfo) -> str:
    declared = column.type.upper()
    if "DATE" in declared or "TIME" in declared:
        return "date"
    if any(word in declared for word in _NUMERIC_TYPES):
        return "number"
    if any(word in declared for word in ("CHAR", "TEXT", "CLOB", "STRING")) or not declared:
        return "text"
    return "other"


async def _query(tool: SqlQueryTool, sql: str) -> SQLResult:
    return await tool.run(SqlQueryArgs(sql=sql))


async def read_schema(database: str) -> SchemaInfo:
    """The schema as the agent's ``sql_schema`` tool reads it."""
    return await SqlSchemaTool(database).run(SqlSchemaArgs())


async def profile_database(database: str, schema: SchemaInfo) -> list[TableProfile]:
    """Profile every plain table of ``schema`` with read-only queries on ``database``."""
    tool = SqlQueryTool(database)
    known: dict[tuple[str, str], list[str]] = {}
    sql = values_query(schema)
    if sql is not None:
        known = known_values(await _query(tool, sql))
    profiles = []
    for table in schema.tables:
        if table.kind == "table" and _IDENTIFIER.fullmatch(table.name):
            profiles.append(await _profile_table(tool, table, known))
    return profiles


async def _profile_table(
    tool: SqlQueryTool, table: TableInfo, known: dict[tuple[str, str], list[str]]
) -> TableProfile:
    rows = (await _query(tool, f"SELECT count(*) FROM {table.name}")).rows[0][0]
    keys = [c.name for c in table.columns if c.primary_key]
    profile = TableProfile(name=table.name, rows=int(str(rows)), key=keys[0] if len(keys) == 1 else None)
    for column in table.columns:
        if not _IDENTIFIER.fullmatch(column.name):
            continue
        if column.references:
            parent, _, parent_column = column.references.partition(".")
            profile.parents.append((column.name, parent, parent_column))
            continue
        if column.primary_key or column.name.endswith("_id"):
            continue
        await _profile_column(tool, profile, column, known.get((table.name, column.name)))
    return profile


async def _profile_column(
    tool: SqlQueryTool, profile: TableProfile, column: ColumnInfo, known: list[str] | None
) -> None:
    kind = _kind(column)
    sample = (
        f"SELECT DISTINCT {column.name} FROM {profile.name} "
        f"WHERE {column.name} IS NOT NULL ORDER BY {column.name} LIMIT {SAMPLE_VALUES}"
    )
    if kind == "number":
        values = [v[0] for v in (await _query(tool, sample)).rows]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        if numbers:
            profile.numbers.append(column.name)
            profile.number_values[column.name] = numbers
    elif kind == "date":
        values = [str(v[0]) for v in (await _query(tool, sample)).rows]
        profile.dates[column.name] = [v for v in values if _PLAIN_VALUE.fullmatch(v)]
    elif kind == "text":
        distinct_sql = f"SELECT count(DISTINCT {column.name}) FROM {profile.name}"
        distinct = int(str((await _query(tool, distinct_sql)).rows[0][0]))
        if known and distinct < profile.rows:
            profile.categories[column.name] = list(known)
        elif distinct == profile.rows and profile.rows > 1:
            values = [str(v[0]) for v in (await _query(tool, sample)).rows]
            profile.names[column.name] = [v for v in values if _PLAIN_VALUE.fullmatch(v)]


# -- templates ---------------------------------------------------------------------------------


def _pick(rng: random.Random, phrasings: Sequence[str], **fields: str) -> str:
    return rng.choice(phrasings).format(**fields)


def _count_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    T = _words(t.name)
    yield Candidate(
        "count",
        _pick(rng, ("How many {T} are there?", "What is the number of {T}?",
                    "How many {T} do we have?", "Count the {T}."), T=T),
        f"SELECT count(*) FROM {t.name}",
        f"There are {{value}} {T}.",
    )
    for column, values in t.categories.items():
        C = _words(column)
        yield Candidate(
            "count_distinct",
            _pick(rng, ("How many different {Cs} are there?", "How many distinct {Cs} do the {T} have?",
                        "What is the number of different {T} {Cs}?"), Cs=plural(C), T=T),
            f"SELECT count(DISTINCT {column}) FROM {t.name}",
            f"There are {{value}} different {plural(C)}.",
        )
        for value in values:
            phrasings = [
                "How many {T} have the {C} {x}?", "How many {T} have {C} {x}?",
                "Count the {T} whose {C} is {x}.", "What is the number of {T} with {C} {x}?",
                "How many {T} are {x}?", "How many {x} {T} are there?",
            ]
            if column in ("country", "city", "region", "state"):
                phrasings += ["How many {T} are from {x}?", "How many {T} come from {x}?"]
            if column in ("category", "type", "kind", "group"):
                phrasings += ["How many {T} are in the {x} {C}?", "How many {T} belong to the {x} {C}?"]
            yield Candidate(
                "count_filter",
                _pick(rng, phrasings, T=T, C=C, x=value),
                f"SELECT count(*) FROM {t.name} WHERE {column} = {sql_literal(value)}",
                f"{{value}} {T} have the {C} {value}.",
            )


def _lookup_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    name = t.name_column
    if name is None:
        return
    targets = [c for c in [*t.numbers, *t.categories, *t.names, *t.dates] if c != name]
    for value in t.names[name]:
        for column in targets:
            C = _words(column)
            phrasings = ["What is the {C} of {x}?", "What {C} does {x} have?", "Tell me the {C} of {x}."]
            if column in ("country", "city"):
                phrasings += ["Which {C} is {x} from?", "What {C} does {x} live in?"]
            if column == "category":
                phrasings += ["Which category is {x} in?"]
            if column == "price":
                phrasings += ["How much does {x} cost?", "What does {x} cost?"]
            yield Candidate(
                "lookup",
                _pick(rng, phrasings, C=C, x=value),
                f"SELECT {column} FROM {t.name} WHERE {name} = {sql_literal(value)}",
                f"The {C} of {value} is {{value}}.",
            )


def _extreme_words(column: str, highest: bool) -> tuple[str, ...]:
    if column == "price":
        return ("most expensive",) if highest else ("cheapest", "least expensive")
    return ()


def _superlative_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    name = t.name_column
    if name is None:
        return
    S = singular(t.name)
    filters: list[tuple[str, str, str]] = [("", "", "")]
    filters += [(c, v, f" WHERE {c} = {sql_literal(v)}") for c, vs in t.categories.items() for v in vs]
    for column in t.numbers:
        C = _words(column)
        for highest in (True, False):
            word = "highest" if highest else "lowest"
            for f_column, f_value, where in filters:
                phrasings = [f"Which {{S}} has the {word} {{C}}{{f}}?", f"What is the {{S}} with the {word} {{C}}{{f}}?"]
                phrasings += [f"What is the {w} {{S}}{{f}}?" for w in _extreme_words(column, highest)]
                phrasings += [f"Which {{S}} is the {w}{{f}}?" for w in _extreme_words(column, highest)]
                suffix = f" with the {_words(f_column)} {f_value}" if f_column else ""
                order = " DESC" if highest else ""
                yield Candidate(
                    "superlative",
                    _pick(rng, phrasings, S=S, C=C, f=suffix),
                    f"SELECT {name} FROM {t.name}{where} ORDER BY {column}{order} LIMIT 1",
                    f"The {S} with the {word} {C}{suffix} is {{value}}.",
                )


_AGGREGATES = {
    "sum": (("What is the total {C} of all {T}{f}?", "What is the sum of the {C} of the {T}{f}?",
             "What is the total {C}{f}?"), "The total {C}{f} is {{value}}."),
    "avg": (("What is the average {C} of the {T}{f}?", "What is the average {S} {C}{f}?",
             "What is the mean {C} of the {T}{f}?"), "The average {C}{f} is {{value}}."),
    "max": (("What is the highest {C} of the {T}{f}?", "What is the maximum {C}{f}?",
             "What is the largest {S} {C}{f}?"), "The highest {C}{f} is {{value}}."),
    "min": (("What is the lowest {C} of the {T}{f}?", "What is the minimum {C}{f}?",
             "What is the smallest {S} {C}{f}?"), "The lowest {C}{f} is {{value}}."),
}


def _aggregate_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    filters: list[tuple[str, str]] = [("", "")]
    filters += [
        (f" with the {_words(c)} {v}", f" WHERE {c} = {sql_literal(v)}")
        for c, vs in t.categories.items()
        for v in vs
    ]
    for column in t.numbers:
        for function, (phrasings, answer) in _AGGREGATES.items():
            for suffix, where in filters:
                fields = {"C": _words(column), "T": _words(t.name), "S": singular(t.name), "f": suffix}
                yield Candidate(
                    "aggregate",
                    _pick(rng, phrasings, **fields),
                    f"SELECT {function}({column}) FROM {t.name}{where}",
                    answer.format(**fields),
                )


def _group_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    T = _words(t.name)
    for column in t.categories:
        C = _words(column)
        for most in (True, False):
            word = "most" if most else "fewest"
            order = " DESC" if most else ""
            yield Candidate(
                "group_top",
                _pick(rng, (f"Which {{C}} has the {word} {{T}}?", f"Which {{C}} do the {word} {{T}} have?",
                            f"What is the {{C}} with the {word} {{T}}?"), C=C, T=T),
                f"SELECT {column}, count(*) FROM {t.name} GROUP BY {column} "
                f"ORDER BY count(*){order} LIMIT 1",
                f"The {C} with the {word} {T} is {{value}}.",
            )


def _range_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    T = _words(t.name)
    for column, values in t.number_values.items():
        C = _words(column)
        for value in rng.sample(values, min(4, len(values))):
            above = rng.random() < 0.5
            op, word = (">", rng.choice(("above", "greater than", "more than"))) if above else (
                "<", rng.choice(("below", "less than", "under")))
            phrasings = ["How many {T} have a {C} {w} {k}?", "Count the {T} with a {C} {w} {k}."]
            if column == "price":
                phrasings.append("How many {T} cost {w} {k}?")
            literal = sql_literal(value)
            yield Candidate(
                "range",
                _pick(rng, phrasings, T=T, C=C, w=word, k=literal),
                f"SELECT count(*) FROM {t.name} WHERE {column} {op} {literal}",
                f"{{value}} {T} have a {C} {word} {literal}.",
            )
    for column, dates in t.dates.items():
        C = _words(column)
        for value in rng.sample(dates, min(4, len(dates))):
            after = rng.random() < 0.5
            op, word = (">", "after") if after else ("<", "before")
            yield Candidate(
                "range",
                _pick(rng, ("How many {T} have a {C} date {w} {d}?", "How many {T} have {C} {w} {d}?",
                            "Count the {T} with {C} {w} {d}."), T=T, C=C, w=word, d=value),
                f"SELECT count(*) FROM {t.name} WHERE {column} {op} {sql_literal(value)}",
                f"{{value}} {T} have {C} {word} {value}.",
            )


def _join_questions(
    child: TableProfile, tables: dict[str, TableProfile], rng: random.Random
) -> Iterator[Candidate]:
    for fk, parent_name, parent_key in child.parents:
        parent = tables.get(parent_name)
        if parent is None or parent is child:
            continue
        source = (
            f"FROM {child.name} JOIN {parent.name} "
            f"ON {parent.name}.{parent_key} = {child.name}.{fk}"
        )
        Tc, Sp = _words(child.name), singular(parent.name)
        conditions = [(c, v) for c, vs in parent.categories.items() for v in vs]
        name = parent.name_column
        if name is not None:
            conditions += [(name, v) for v in parent.names[name]]
        for column, value in conditions:
            by_name = column == name
            where = f" WHERE {parent.name}.{column} = {sql_literal(value)}"
            phrasings = (
                ("How many {Tc} does {x} have?", "How many {Tc} belong to {x}?",
                 "How many {Tc} are there for {x}?", "How many {Tc} did {x} make?")
                if by_name
                else ("How many {Tc} belong to a {Sp} with the {C} {x}?",
                      "How many {Tc} have a {Sp} whose {C} is {x}?",
                      "Count the {Tc} of {Sp} {C} {x}.")
            )
            fields = {"Tc": Tc, "Sp": Sp, "C": _words(column), "x": value}
            yield Candidate(
                "join_count",
                _pick(rng, phrasings, **fields),
                f"SELECT count(*) {source}{where}",
                f"{{value}} {Tc} belong to {value}." if by_name else f"{{value}} {Tc} match.",
            )
            for number in child.numbers:
                N = _words(number)
                yield Candidate(
                    "join_sum",
                    _pick(rng, ("What is the total {N} of the {Tc} of {x}?",
                                "What is the sum of {N} over the {Tc} of {x}?"), N=N, Tc=Tc, x=value),
                    f"SELECT sum({child.name}.{number}) {source}{where}",
                    f"The total {N} of the {Tc} of {value} is {{value}}.",
                )


def candidate_questions(profiles: Sequence[TableProfile], seed: int) -> list[Candidate]:
    """Every templated question over ``profiles``, phrased by ``seed``, deduplicated by SQL and
    by question (first wins), in a deterministic order."""
    rng = random.Random(seed)
    tables = {t.name: t for t in profiles}
    found: list[Candidate] = []
    for table in profiles:
        for make in (
            _count_questions, _lookup_questions, _superlative_questions,
            _aggregate_questions, _group_questions, _range_questions,
        ):
            found.extend(make(table, rng))
        found.extend(_join_questions(table, tables, rng))
    seen_sql: set[str] = set()
    seen_question: set[str] = set()
    unique = []
    for candidate in found:
        sql_key, question_key = normalize(candidate.sql), normalize(candidate.question)
        if sql_key in seen_sql or question_key in seen_question:
            continue
        seen_sql.add(sql_key)
        seen_question.add(question_key)
        unique.append(candidate)
    return unique


def normalize(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation: how collisions are compared."""
    return " ".join(text.lower().replace(";", " ").split()).rstrip("?.! ")
