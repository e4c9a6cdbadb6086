"""A grammar of simple SELECTs over one database, for constrained decoding with a small model.

:func:`select_pattern` turns a :class:`~genai_factory.agents.sql_results.SchemaInfo` into a regular
expression (a JSON-schema ``pattern``, which llama.cpp compiles into its grammar) that only matches
queries a small model can get right and that name real tables and columns:

``SELECT <what> FROM <table> [JOIN <table> ON <fk>] [WHERE <cond>] [GROUP BY <col>]
[ORDER BY <expr> [DESC]] [LIMIT <n>]``

where ``<what>`` is ``count(*)``, an aggregate of a column (``count sum avg min max``, ``count(DISTINCT
col)``), ``sum avg min max`` of the product of two numeric columns that are not keys (a revenue:
``sum(quantity * unit_price)``), a column and an aggregate (with ``GROUP BY``), or up to four
columns, each ``<col>`` belongs to the tables in ``FROM`` (qualified as
``table.col`` after a join along a foreign key), and the one condition compares a column with a
literal of its own kind (:func:`literal_kind`): a number for a numeric column (keys and foreign
keys included), a quoted text for a text column, a quoted date for a date or time column. So
``customer_id = 'Grace Hopper'`` or ``ordered_at = 'Shipped'`` cannot be written: a name is
matched in the table that holds it, through the join. A table's lone primary key is never tested
(the 135M model kept writing ``WHERE id = <made-up number>``). A text column with few distinct
values (:func:`values_query` reads them) may only be compared with one of them, so ``status =
'Cancelled'`` cannot be written for ``'cancelled'``.

Given the question, every literal is grounded in it: a known value only when the question names it
(:func:`named_values`), any other literal copied from it (:func:`question_literals`: a span of its
words, one of its numbers or dates). So the model cannot make up a key (``customer_id = 1`` for a
customer asked about by name), a date (``ordered_at = '2024-05-01'`` for "shipped"), a bound
(``price < 1`` for "cheapest") or a filter the question does not ask for (``status = 'placed'``
for "How many orders did <name> place?": the join to ``customers`` is left). The price: a value
the question only paraphrases ("Germany" for ``'DE'``) cannot be written either.

The question also shapes what is read and shown. ``FROM`` reads the tables it names
(:func:`tables_named`: "customers", "order items") and those holding a known value it names
clearly (longer than two characters, or as the database writes it: "US" but not the "at" of
"ordered at"); when no alternative reads all of them, those reading the most are kept, so "Where is
Alan Turing from?" reads ``customers`` (or a join with it), not ``products``. A lone ``count`` is
only written when the question counts (:func:`asks_count`: "how many", "number", "count", "are
there"), and a column whose one value the question names is not shown: for "How much does the
Laptop stand cost?" the model wrote ``SELECT count(*) ... WHERE name = 'Laptop stand'``, which
can now only be ``SELECT price ...`` or another column of the row.

One condition only: with ``AND`` allowed, the 135M model kept adding made-up
ones. The grammar only shapes what the model writes: the query still goes through the read-only
checks of ``sql_query``. A small model cannot misspell a table, a column or a known value under it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genai_factory.agents.sql_results import ColumnInfo, SchemaInfo, SQLResult, TableInfo

#: Known values of text columns: ``(table, column)`` → the distinct values.
ColumnValues = Mapping[tuple[str, str], Sequence[str]]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Only characters that need no escaping in JSON, SQL or llama.cpp's grammar (which rejects "\.").
_TEXT = r"'[A-Za-z0-9 _@.%-]{1,40}'"
_NUMBER = r"-?[0-9]{1,9}([.][0-9]{1,4})?"
_DATE = r"'[0-9]{4}(-[0-9]{2}(-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?)?)?'"
_COMPARISONS = r"(=|!=|<|>|<=|>=)"
_OPERATORS = r"(=|!=|<|>|<=|>=|LIKE)"
#: What a column of each kind may be compared with: kind → (operators, literal).
Literals = Mapping[str, tuple[str, str]]
_LITERALS: Literals = {
    "number": (_COMPARISONS, _NUMBER),
    "text": (_OPERATORS, _TEXT),
    "date": (_COMPARISONS, _DATE),
    "any": (_OPERATORS, f"({_TEXT}|{_NUMBER})"),
}
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC", "SERIAL", "MONEY")
_TEXT_TYPES = ("CHAR", "TEXT", "CLOB", "STRING")
_AGGREGATES = r"(count|sum|avg|min|max)"
_MEASURES = r"(sum|avg|min|max)"
#: Longest SQL text the grammar lets the model write.
MAX_SQL_CHARS = 400
#: A text column with at most this many distinct values is compared with them only.
MAX_KNOWN_VALUES = 12
_VALUE = re.compile(r"[A-Za-z0-9 _@.%-]{1,40}")


def _columns(table: TableInfo) -> list[str]:
    return [c.name for c in table.columns if _IDENTIFIER.fullmatch(c.name)]


def _filterable(table: TableInfo) -> list[ColumnInfo]:
    """The columns a condition may test: all but a table's lone primary key (a surrogate id that
    questions never name, and that the 135M model kept filtering on with made-up numbers)."""
    keys = [c.name for c in table.columns if c.primary_key]
    lone_key = keys[0] if len(keys) == 1 else None
    return [c for c in table.columns if _IDENTIFIER.fullmatch(c.name) and c.name != lone_key]


def _alternatives(names: Sequence[str]) -> str:
    return "(" + "|".join(names) + ")"


def literal_kind(column: ColumnInfo) -> str:
    """What ``column`` may be compared with: ``number``, ``text``, ``date`` or ``any``.

    Declared numeric types, and keys or foreign keys without a text type (surrogate ids), take
    numbers; text types take quoted text; date and time types take a quoted date; a column with
    another type takes either, and so does an undeclared one unless it is a key or named ``*_id``.
    """
    declared = column.type.upper()
    if "DATE" in declared or "TIME" in declared:
        return "date"
    if any(word in declared for word in _TEXT_TYPES):
        return "text"
    if "INTERVAL" not in declared and any(word in declared for word in _NUMERIC_TYPES):
        return "number"
    is_id = column.name.lower() == "id" or column.name.lower().endswith("_id")
    if not declared and (column.references or column.primary_key or is_id):
        return "number"
    return "any"


#: A column a condition may test: (its table, its name as written in the pattern, its info).
Testable = tuple[str, str, ColumnInfo]


def _condition(columns: Sequence[Testable], values: ColumnValues, literals: Literals) -> str | None:
    """``col op value`` with a literal of the column's kind; known values where there are. A
    column whose kind has no literal in ``literals`` is not tested."""
    free: dict[str, list[str]] = {}
    enumerated = []
    for table, written, column in columns:
        known = values.get((table, column.name))
        if known is None:
            free.setdefault(literal_kind(column), []).append(written)
        elif known:  # an empty list: a column of known values, none of them asked about
            quoted = [_escape(value) for value in known]
            enumerated.append(f"{written} (=|!=) '{_alternatives(quoted)}'")
    parts = [
        f"{_alternatives(names)} {literals[kind][0]} {literals[kind][1]}"
        for kind, names in free.items()
        if kind in literals
    ]
    return _alternatives(parts + enumerated) if parts or enumerated else None


def _clause_pattern(column: str, condition: str | None) -> str:
    """Everything after ``FROM ...``, for a column alternation ``column``."""
    order = f"({column}|count\\(\\*\\)|{_AGGREGATES}\\({column}\\))"
    where = f"( WHERE {condition})?" if condition else ""
    return f"{where}( GROUP BY {column})?( ORDER BY {order}( DESC)?)?( LIMIT [0-9]{{1,3}})?"


@dataclass(frozen=True)
class _Asked:
    """What the question lets the select list be: whether it may be a lone count, the columns
    it may not show (those the question names exactly one known value of), and whether it asks
    for a date ("When ...?")."""

    counting: bool = True
    given: frozenset[tuple[str, str]] = frozenset()
    when: bool = False
    #: The question's words, lower case, between spaces (``None``: no question).
    text: str | None = None

    def names(self, column: str) -> bool:
        """Whether the question names ``column``: its words, or its last word ("price" for
        ``unit_price``) in the singular or plural."""
        if self.text is None:
            return True
        words = column.lower().split("_")
        last = words[-1]
        other = last[:-1] if last.endswith("s") else last + "s"
        forms = (" ".join(words), last, other)
        return any(f" {form} " in self.text for form in forms if form)

    def shown(self, columns: Sequence[tuple[str, str, ColumnInfo]]) -> list[str]:
        """Which of ``columns`` (table, as written, info) the select list may show: not a
        given one; for "When ...?", the date columns when there are any."""
        kept = [(t, w, c) for t, w, c in columns if (t, c.name) not in self.given]
        dates = [w for _, w, c in kept if literal_kind(c) == "date"]
        return dates if self.when and dates else [w for _, w, _ in kept]


def _select_pattern(
    columns: Sequence[str],
    selectable: Sequence[str],
    numbers: Sequence[tuple[str, str]],
    asked: _Asked,
) -> str:
    """``SELECT`` and its list: a lone aggregate (``count`` only when the question counts), an
    aggregate of the product of two ``numbers`` (as written, name), a column and an aggregate
    (for ``GROUP BY``), or up to four ``selectable`` columns.

    Where a product can be written, a question that neither counts nor names any of the numbers
    ("What is the total revenue ...?") gets no ``sum avg min max`` of a lone number: the model
    wrote ``sum(quantity)`` for a revenue."""
    column = _alternatives(columns)
    counts = f"count\\(\\*\\)|count\\(DISTINCT {column}\\)"
    aggregate = f"({counts}|{_AGGREGATES}\\({column}\\))"
    measured = list(columns)
    if len(numbers) >= 2 and not asked.counting and not any(asked.names(n) for _, n in numbers):
        written = {w for w, _ in numbers}
        measured = [c for c in columns if c not in written]
    measures = [f"{_MEASURES}\\({_alternatives(measured)}\\)"] if measured else []
    lone = [aggregate] if asked.counting else measures
    if len(numbers) >= 2:
        factor = _alternatives([w for w, _ in numbers])
        lone.append(f"{_MEASURES}\\({factor} [*] {factor}\\)")
    shown = [f"{_alternatives(selectable)}, {aggregate}"] if selectable else []
    if selectable:
        plain = _alternatives(selectable)
        shown.append(f"{plain}(, {plain}){{0,3}}")
    return f"SELECT {_alternatives(lone + shown)}"


def _numeric(table: TableInfo) -> list[str]:
    """The columns of ``table`` holding quantities: numeric, neither keys nor ``*_id``."""
    return [
        c.name
        for c in table.columns
        if _IDENTIFIER.fullmatch(c.name)
        and literal_kind(c) == "number"
        and not (c.primary_key or c.references)
        and not (c.name.lower() == "id" or c.name.lower().endswith("_id"))
    ]


def _single_table(
    table: TableInfo, values: ColumnValues, literals: Literals, asked: _Asked
) -> str | None:
    columns = _columns(table)
    if not columns or not _IDENTIFIER.fullmatch(table.name):
        return None
    column = _alternatives(columns)
    named = [c for c in table.columns if _IDENTIFIER.fullmatch(c.name)]
    selectable = asked.shown([(table.name, c.name, c) for c in named])
    testable = [(table.name, c.name, c) for c in _filterable(table)]
    condition = _condition(testable, values, literals)
    numbers = [(c, c) for c in _numeric(table)]
    select = _select_pattern(columns, selectable, numbers, asked)
    return f"{select} FROM {table.name}{_clause_pattern(column, condition)}"


def _joins(
    schema: SchemaInfo, values: ColumnValues, literals: Literals, asked: _Asked
) -> list[tuple[set[str], str]]:
    """One alternative per foreign key ``a.x -> b.y``: ``FROM a JOIN b ON b.y = a.x``, with the
    two tables it reads."""
    tables = {t.name: t for t in schema.tables if _IDENTIFIER.fullmatch(t.name)}
    joins = []
    for table in tables.values():
        for col in table.columns:
            target_name, _, target_col = (col.references or "").partition(".")
            target = tables.get(target_name)
            if target is None or target is table or not _IDENTIFIER.fullmatch(target_col):
                continue
            pair = (table, target)
            written = [f"{t.name}[.]{c}" for t in pair for c in _columns(t)]
            column = _alternatives(written)
            selectable = asked.shown(
                [
                    (t.name, f"{t.name}[.]{c.name}", c)
                    for t in pair
                    for c in t.columns
                    if _IDENTIFIER.fullmatch(c.name)
                ]
            )
            numbers = [(f"{t.name}[.]{c}", c) for t in pair for c in _numeric(t)]
            testable = [
                (t.name, f"{t.name}[.]{c.name}", c) for t in (table, target) for c in _filterable(t)
            ]
            condition = _condition(testable, values, literals)
            source = (
                f"FROM {table.name} JOIN {target.name} "
                f"ON {target.name}[.]{target_col} = {table.name}[.]{col.name}"
            )
            select = _select_pattern(written, selectable, numbers, asked)
            clauses = _clause_pattern(column, condition)
            joins.append(({table.name, target.name}, f"{select} {source}{clauses}"))
    return joins


def select_pattern(
    schema: SchemaInfo, values: ColumnValues | None = None, question: str | None = None
) -> str | None:
    """The regular expression of the simple SELECTs over ``schema`` (``None``: no usable table).

    ``values`` (from :func:`known_values`) limits comparisons on those text columns; with
    ``question``, every other literal is copied from it (:func:`question_literals`).
    """
    known = values or {}
    literals = _LITERALS
    asked = _Asked()
    if question is not None:
        known, literals = named_values(known, question), question_literals(question)
        clear = _clearly_named(known, question)
        given = frozenset(key for key, named in clear.items() if len(named) == 1)
        asked = _Asked(
            counting=asks_count(question),
            given=given,
            when=asks_when(question),
            text=f" {' '.join(_words(question)).lower()} ",
        )
    alternatives: list[tuple[set[str], str]] = []
    for table in schema.tables:
        single = _single_table(table, known, literals, asked)
        if single is not None:
            alternatives.append(({table.name}, single))
    alternatives += _joins(schema, known, literals, asked)
    if question is not None:
        wanted = tables_named(schema, question) | {t for (t, _), v in clear.items() if v}
        alternatives = _reading(alternatives, wanted)
    if not alternatives:
        return None
    return "^(" + "|".join(pattern for _, pattern in alternatives) + ")$"


def _clearly_named(
    named: Mapping[tuple[str, str], Sequence[str]], question: str
) -> dict[tuple[str, str], list[str]]:
    """The ``named`` values that cannot be a common word of the question: longer than two
    characters, or written in the question as in the database ("US", but not the "at" of
    "ordered at" for ``'AT'``)."""
    words = f" {' '.join(_words(question))} "
    return {
        key: [v for v in values if len(v) > 2 or f" {' '.join(_words(v))} " in words]
        for key, values in named.items()
    }


def _reading(
    alternatives: list[tuple[set[str], str]], wanted: set[str]
) -> list[tuple[set[str], str]]:
    """The alternatives that read the most of the ``wanted`` tables (all, when none does)."""
    most = max((len(tables & wanted) for tables, _ in alternatives), default=0)
    return [a for a in alternatives if len(a[0] & wanted) == most] if most else alternatives


_COUNTING = re.compile(
    r"\b(how many|number|numbers|count|counts|counted|how often|(are|is|were|was) there)\b",
    re.IGNORECASE,
)


def asks_count(question: str) -> bool:
    """Whether ``question`` asks for a count ("how many", "the number of", "count", "are
    there"): only then may the select list be a lone ``count``. Otherwise the model wrote
    ``SELECT count(*) ... WHERE name = '<the row asked about>'`` for "What does X cost?"."""
    return _COUNTING.search(question) is not None


_WHEN = re.compile(r"^\W*when\b|\bwhen (did|was|were|is|are|does|do|has|have)\b", re.IGNORECASE)


def asks_when(question: str) -> bool:
    """Whether ``question`` asks when something happened: then the select list shows date
    columns (for "When did Hedy Lamarr sign up?" the model showed her ``country``)."""
    return _WHEN.search(question) is not None


def tables_named(schema: SchemaInfo, question: str) -> set[str]:
    """The tables ``question`` names, by their name (``order_items`` as "order items") or its
    singular or plural, as whole words in any case; a longer name is matched first, so "order
    items" does not also name ``orders``."""
    text = f" {' '.join(_words(question)).lower()} "
    found: set[str] = set()
    tables = sorted(schema.tables, key=lambda t: -len(t.name))
    for table in tables:
        words = table.name.lower().replace("_", " ").split()
        if not words:
            continue
        last = words[-1]
        other = last[:-1] if last.endswith("s") else last + "s"
        for form in (words, [*words[:-1], other]):
            phrase = f" {' '.join(form)} "
            if phrase in text:
                found.add(table.name)
                text = text.replace(phrase, " | ")
    return found


def sql_input_schema(
    schema: SchemaInfo, values: ColumnValues | None = None, question: str | None = None
) -> dict[str, Any] | None:
    """The ``input`` schema of ``sql_query`` under the grammar, or ``None`` without tables."""
    pattern = select_pattern(schema, values, question)
    if pattern is None:
        return None
    sql = {"type": "string", "pattern": pattern, "maxLength": MAX_SQL_CHARS}
    return {
        "type": "object",
        "properties": {"sql": sql},
        "required": ["sql"],
        "additionalProperties": False,
    }


_WORD = re.compile(r"[A-Za-z0-9_@%.-]+")
_DATE_IN_TEXT = re.compile(r"\b[0-9]{4}-[0-9]{2}(-[0-9]{2})?\b")
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.-])-?[0-9]{1,9}([.][0-9]{1,4})?(?![\w-])")
#: Longest span of the question's words a text literal may copy.
MAX_SPAN_WORDS = 5


def question_literals(question: str) -> dict[str, tuple[str, str]]:
    """The literals a condition may use for ``question``: only what it says.

    Text: a span of up to :data:`MAX_SPAN_WORDS` of its words (``LIKE`` may add ``%`` around it);
    numbers: its numbers; dates: its ISO dates (``2024-03`` or ``2024-03-11``). A kind without any
    is left out, and so are comparisons on columns of that kind.
    """
    dates = list(dict.fromkeys(m.group(0) for m in _DATE_IN_TEXT.finditer(question)))
    rest = _DATE_IN_TEXT.sub(" ", question)
    numbers = list(dict.fromkeys(m.group(0) for m in _NUMBER_IN_TEXT.finditer(rest)))
    words = _words(question)
    spans = [
        " ".join(words[start : start + size])
        for start in range(len(words))
        for size in range(1, MAX_SPAN_WORDS + 1)
        if start + size <= len(words)
    ]
    spans = [s for s in dict.fromkeys(spans) if _VALUE.fullmatch(s) and len(s) <= 38]
    found: dict[str, tuple[str, str]] = {}
    text = f"'%?{_alternatives([_escape(s) for s in spans])}%?'" if spans else None
    number = _alternatives([_escape(n) for n in numbers]) if numbers else None
    if text:
        found["text"] = (_OPERATORS, text)
    if number:
        found["number"] = (_COMPARISONS, number)
    if dates:
        found["date"] = (_COMPARISONS, f"'{_alternatives(dates)}'")
    either = [literal for literal in (text, number) if literal]
    if either:
        found["any"] = (_OPERATORS, _alternatives(either))
    return found


def named_values(values: ColumnValues, question: str) -> dict[tuple[str, str], list[str]]:
    """``values`` cut to those ``question`` names (as whole words, in any case); a column keeps
    its key with an empty list when the question names none of its values."""
    asked = f" {' '.join(_words(question)).lower()} "
    return {
        key: [v for v in known if f" {' '.join(_words(v)).lower()} " in asked]
        for key, known in values.items()
    }


def _words(text: str) -> list[str]:
    stripped = (word.strip(".-%") for word in _WORD.findall(text))
    return [word for word in stripped if word]


def _escape(literal: str) -> str:
    return literal.replace(".", "[.]")


def _is_text(column: ColumnInfo) -> bool:
    declared = column.type.upper()
    return any(word in declared for word in _TEXT_TYPES) or not declared


def values_query(schema: SchemaInfo) -> str | None:
    """One read-only query for the distinct values of every text column (at most
    :data:`MAX_KNOWN_VALUES` + 1 each), or ``None`` when there is no text column."""
    parts = []
    for table in schema.tables:
        if table.kind != "table" or not _IDENTIFIER.fullmatch(table.name):
            continue
        for column in table.columns:
            if not (_is_text(column) and _IDENTIFIER.fullmatch(column.name)):
                continue
            parts.append(
                f"SELECT '{table.name}' AS t, '{column.name}' AS c, v FROM (SELECT DISTINCT "  # noqa: S608  identifiers checked by _IDENTIFIER above, no values interpolated
                f"{column.name} AS v FROM {table.name} WHERE {column.name} IS NOT NULL "
                f"LIMIT {MAX_KNOWN_VALUES + 1})"
            )
    return " UNION ALL ".join(parts) or None


def known_values(result: SQLResult) -> dict[tuple[str, str], list[str]]:
    """The columns of a :func:`values_query` result whose values are few and plain.

    A column with more than :data:`MAX_KNOWN_VALUES` values, or one that does not fit the
    grammar's quoted text, is left free; so is the last column of a truncated result.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for table, column, value in result.rows:
        found.setdefault((str(table), str(column)), []).append(str(value))
    if result.truncated and found:
        found.pop(list(found)[-1])
    return {
        key: values
        for key, values in found.items()
        if len(values) <= MAX_KNOWN_VALUES and all(_VALUE.fullmatch(v) for v in values)
    }
