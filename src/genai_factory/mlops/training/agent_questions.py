"""Questions about one database, with the SQL that answers them, from templates.

:func:`candidate_questions` turns the profile of :mod:`~genai_factory.mlops.training.agent_schema`
into (question, SQL, answer template) candidates: counts, counts with a filter on a category,
distinct counts, lookups by name, superlatives, sums, averages, minimum and maximum (alone or with
a filter), the category with the most or fewest rows, joins along foreign keys, and number and
date ranges. Each template has several phrasings; which one a candidate gets depends on the seed.
Every SQL is written in the shape the agent's grammar (:mod:`~genai_factory.agents.sql_grammar`)
lets the model write.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from genai_factory.mlops.training.agent_schema import TableProfile


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


# -- templates ---------------------------------------------------------------------------------


def _pick(rng: random.Random, phrasings: Sequence[str], **fields: str) -> str:
    return rng.choice(phrasings).format(**fields)


def _count_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    T = _words(t.name)
    yield Candidate(
        "count",
        _pick(
            rng,
            (
                "How many {T} are there?",
                "What is the number of {T}?",
                "How many {T} do we have?",
                "Count the {T}.",
                "What is the total number of {T}?",
                "How many {T} are in the database?",
            ),
            T=T,
        ),
        f"SELECT count(*) FROM {t.name}",
        f"There are {{value}} {T}.",
    )
    for column, values in t.categories.items():
        C = _words(column)
        yield Candidate(
            "count_distinct",
            _pick(
                rng,
                (
                    "How many different {Cs} are there?",
                    "How many distinct {Cs} do the {T} have?",
                    "What is the number of different {T} {Cs}?",
                    "How many distinct {S} {Cs} are there?",
                    "How many different {Cs} do the {T} have?",
                    "Count the distinct {Cs} of the {T}.",
                ),
                Cs=plural(C),
                T=T,
                S=singular(t.name),
            ),
            f"SELECT count(DISTINCT {column}) FROM {t.name}",
            f"There are {{value}} different {plural(C)}.",
        )
        for value in values:
            phrasings = [
                "How many {T} have the {C} {x}?",
                "How many {T} have {C} {x}?",
                "Count the {T} whose {C} is {x}.",
                "What is the number of {T} with {C} {x}?",
                "How many {T} are {x}?",
                "How many {x} {T} are there?",
            ]
            if _participle(value):
                phrasings += [
                    "How many {T} were {x}?",
                    "How many {T} have been {x}?",
                    "How many {x} {T} do we have?",
                ]
            if column in ("country", "city", "region", "state"):
                phrasings += ["How many {T} are from {x}?", "How many {T} come from {x}?"]
            if column in ("category", "type", "kind", "group"):
                phrasings += [
                    "How many {T} are in the {x} {C}?",
                    "How many {T} belong to the {x} {C}?",
                ]
            yield Candidate(
                "count_filter",
                _pick(rng, phrasings, T=T, C=C, x=value),
                f"SELECT count(*) FROM {t.name} WHERE {column} = {sql_literal(value)}",
                f"{{value}} {T} have the {C} {value}.",
            )


def _participle(value: str) -> bool:
    """Whether a category value reads as a past participle (``shipped``, ``paid``, ``sent``)."""
    word = value.strip().lower()
    return " " not in word and word.endswith(("ed", "paid", "sent", "done", "won", "lost"))


def _lookup_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    name = t.name_column
    if name is None:
        return
    targets = [c for c in [*t.numbers, *t.categories, *t.names, *t.dates] if c != name]
    for value in t.names[name]:
        for column in targets:
            C = _words(column)
            phrasings = [
                "What is the {C} of {x}?",
                "What {C} does {x} have?",
                "Tell me the {C} of {x}.",
            ]
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
    if column in ("age", "length", "size", "height", "weight"):
        return ("largest", "biggest") if highest else ("smallest",)
    return ()


def _superlative_questions(t: TableProfile, rng: random.Random) -> Iterator[Candidate]:
    """The row with the highest or lowest number (or earliest or latest date), alone or within a
    category (``superlative_filter``); and the other columns of the extreme row."""
    name = t.name_column
    if name is None:
        return
    S = singular(t.name)
    filters: list[tuple[str, str, str]] = [("", "", "")]
    filters += [
        (c, v, f" WHERE {c} = {sql_literal(v)}") for c, vs in t.categories.items() for v in vs
    ]
    others = [c for c in [*t.categories, *t.numbers, *t.dates] if c != name]
    for column in t.numbers:
        C = _words(column)
        for highest in (True, False):
            word = "highest" if highest else "lowest"
            extremes = _extreme_words(column, highest)
            for f_column, f_value, where in filters:
                phrasings = [
                    f"Which {{S}} has the {word} {{C}}{{f}}?",
                    f"What is the {{S}} with the {word} {{C}}{{f}}?",
                ]
                phrasings += [f"What is the {w} {{S}}{{f}}?" for w in extremes]
                phrasings += [f"Which {{S}} is the {w}{{f}}?" for w in extremes]
                suffix = f" with the {_words(f_column)} {f_value}" if f_column else ""
                order = " DESC" if highest else ""
                yield Candidate(
                    "superlative_filter" if f_column else "superlative",
                    _pick(rng, phrasings, S=S, C=C, f=suffix),
                    f"SELECT {name} FROM {t.name}{where} ORDER BY {column}{order} LIMIT 1",
                    f"The {S} with the {word} {C}{suffix} is {{value}}.",
                )
            for other in others:
                if other == column:
                    continue
                other_words = _words(other)
                phrasings = [f"What is the {{O}} of the {{S}} with the {word} {{C}}?"]
                phrasings += [f"What is the {{O}} of the {w} {{S}}?" for w in extremes]
                phrasings += [f"Which {{O}} does the {w} {{S}} have?" for w in extremes]
                yield Candidate(
                    "superlative",
                    _pick(rng, phrasings, S=S, C=C, O=other_words),
                    f"SELECT {other} FROM {t.name} ORDER BY {column}{' DESC' if highest else ''} "
                    "LIMIT 1",
                    f"The {other_words} of the {S} with the {word} {C} is {{value}}.",
                )
    for column in t.dates:
        C = _words(column)
        for latest in (True, False):
            word = "latest" if latest else "earliest"
            order = " DESC" if latest else ""
            phrasings = [
                f"Which {{S}} has the {word} {{C}} date?",
                f"What is the {{S}} with the {word} {{C}}?",
                f"Which {{S}} has the {word} {{C}}?",
            ]
            yield Candidate(
                "superlative",
                _pick(rng, phrasings, S=S, C=C),
                f"SELECT {name} FROM {t.name} ORDER BY {column}{order} LIMIT 1",
                f"The {S} with the {word} {C} is {{value}}.",
            )


_AGGREGATES = {
    "sum": (
        (
            "What is the total {C} of all {T}{f}?",
            "What is the sum of the {C} of the {T}{f}?",
            "What is the total {C}{f}?",
        ),
        "The total {C}{f} is {{value}}.",
    ),
    "avg": (
        (
            "What is the average {C} of the {T}{f}?",
            "What is the average {S} {C}{f}?",
            "What is the mean {C} of the {T}{f}?",
        ),
        "The average {C}{f} is {{value}}.",
    ),
    "max": (
        (
            "What is the highest {C} of the {T}{f}?",
            "What is the maximum {C}{f}?",
            "What is the largest {S} {C}{f}?",
        ),
        "The highest {C}{f} is {{value}}.",
    ),
    "min": (
        (
            "What is the lowest {C} of the {T}{f}?",
            "What is the minimum {C}{f}?",
            "What is the smallest {S} {C}{f}?",
        ),
        "The lowest {C}{f} is {{value}}.",
    ),
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
                fields = {
                    "C": _words(column),
                    "T": _words(t.name),
                    "S": singular(t.name),
                    "f": suffix,
                }
                yield Candidate(
                    "aggregate_filter" if where else "aggregate",
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
                _pick(
                    rng,
                    (
                        f"Which {{C}} has the {word} {{T}}?",
                        f"Which {{C}} do the {word} {{T}} have?",
                        f"What is the {{C}} with the {word} {{T}}?",
                    ),
                    C=C,
                    T=T,
                ),
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
            op, word = (
                (">", rng.choice(("above", "greater than", "more than")))
                if above
                else ("<", rng.choice(("below", "less than", "under")))
            )
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
        for day in rng.sample(dates, min(4, len(dates))):
            after = rng.random() < 0.5
            op, word = (">", "after") if after else ("<", "before")
            yield Candidate(
                "range",
                _pick(
                    rng,
                    (
                        "How many {T} have a {C} date {w} {d}?",
                        "How many {T} have {C} {w} {d}?",
                        "Count the {T} with {C} {w} {d}.",
                    ),
                    T=T,
                    C=C,
                    w=word,
                    d=day,
                ),
                f"SELECT count(*) FROM {t.name} WHERE {column} {op} {sql_literal(day)}",
                f"{{value}} {T} have {C} {word} {day}.",
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
                (
                    "How many {Tc} does {x} have?",
                    "How many {Tc} belong to {x}?",
                    "How many {Tc} are there for {x}?",
                    "How many {Tc} did {x} make?",
                )
                if by_name
                else (
                    "How many {Tc} belong to a {Sp} with the {C} {x}?",
                    "How many {Tc} have a {Sp} whose {C} is {x}?",
                    "Count the {Tc} of {Sp} {C} {x}.",
                )
            )
            fields = {"Tc": Tc, "Sp": Sp, "C": _words(column), "x": value}
            yield Candidate(
                "join_count",
                _pick(rng, phrasings, **fields),
                f"SELECT count(*) {source}{where}",
                f"{{value}} {Tc} belong to {value}."
                if by_name
                else f"{{value}} {Tc} belong to a {Sp} with the {_words(column)} {value}.",
            )
            owner = value if by_name else f"{plural(Sp)} with the {_words(column)} {value}"
            for number in child.numbers:
                N = _words(number)
                yield Candidate(
                    "join_sum",
                    _pick(
                        rng,
                        (
                            "What is the total {N} of the {Tc} of {x}?",
                            "What is the sum of {N} over the {Tc} of {x}?",
                        ),
                        N=N,
                        Tc=Tc,
                        x=owner,
                    ),
                    f"SELECT sum({child.name}.{number}) {source}{where}",
                    f"The total {N} of the {Tc} of {owner} is {{value}}.",
                )


#: Phrasings per query at most (two questions may share one SQL, never one question). A kind
#: with many queries is cut to a few questions per kind by ``build_agent_rows`` (first phrasings
#: first), so the extra phrasings go to the kinds with few queries.
PHRASINGS_PER_QUERY = 4


def candidate_questions(
    profiles: Sequence[TableProfile], seed: int, phrasings: int = PHRASINGS_PER_QUERY
) -> list[Candidate]:
    """Every templated question over ``profiles``, phrased by ``seed`` (``phrasings`` draws per
    query), deduplicated by question, in a deterministic order."""
    rng = random.Random(seed)
    tables = {t.name: t for t in profiles}
    found: list[Candidate] = []
    for _ in range(2 * phrasings):  # phrasings are drawn with replacement: draw twice as often
        for table in profiles:
            for make in (
                _count_questions,
                _lookup_questions,
                _superlative_questions,
                _aggregate_questions,
                _group_questions,
                _range_questions,
            ):
                found.extend(make(table, rng))
            found.extend(_join_questions(table, tables, rng))
    per_sql: dict[str, int] = {}
    seen_question: set[str] = set()
    unique = []
    for candidate in found:
        sql_key, question_key = normalize(candidate.sql), normalize(candidate.question)
        if per_sql.get(sql_key, 0) >= phrasings or question_key in seen_question:
            continue
        per_sql[sql_key] = per_sql.get(sql_key, 0) + 1
        seen_question.add(question_key)
        unique.append(candidate)
    return unique


def normalize(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation: how collisions are compared."""
    return " ".join(text.lower().replace(";", " ").split()).rstrip("?.! ")
