"""Bounds on single function calls that the database cannot interrupt once they have started.

The wall-time limit stops a statement between steps of its program (SQLite's progress handler,
PostgreSQL's interrupt checks), not inside one call of a built-in function. A few built-ins can run
for many seconds in one call when given a huge count or long arguments, so their arguments are
bounded here, before the statement runs:

* size arguments (``randomblob(n)``, ``zeroblob(n)``, ``repeat(s, n)``, ``lpad``/``rpad``,
  ``space``): a number literal above ``max_value_bytes`` is refused; for PostgreSQL, which has no
  engine-level length limit, the size must be a number literal;
* ``printf``/``format``: the format must be a string literal without ``*`` widths and with widths
  and precisions of at most :data:`MAX_FORMAT_WIDTH` (``printf('%.*c', 2e9, 'x')`` runs for
  seconds even though its result is too long to be returned);
* ``trim``/``ltrim``/``rtrim``/``btrim`` with a character set: the set must be a string literal
  of at most :data:`MAX_TRIM_CHARS` characters (the work is the product of both lengths).

``LIKE``/``GLOB`` patterns are bounded by the SQLite executor (``SQLITE_LIMIT_LIKE_PATTERN_LENGTH``).
"""

from __future__ import annotations

import re
from typing import Final

from sqlglot import exp

MAX_FORMAT_WIDTH: Final = 10_000
MAX_TRIM_CHARS: Final = 100

#: Functions that allocate by a size argument, and that argument's position (sqlglot's ``Pad``
#: stands for ``lpad`` and ``rpad``).
SIZED_FUNCTIONS: Final = {
    "randomblob": 0, "zeroblob": 0, "space": 0, "repeat": 1, "replicate": 1, "lpad": 1, "rpad": 1,
    "pad": 1,
}  # fmt: skip

FORMAT_FUNCTIONS: Final = frozenset({"printf", "format"})

_CONVERSION: Final = re.compile(r"%[-+ 0#,!]*(\*|\d+)?(?:\.(\*|\d+))?")

Problem = tuple[str, str]


def costly_call(
    node: exp.Func, names: set[str], dialect: str, max_value_bytes: int
) -> Problem | None:
    """``(reason, detail)`` if the call could run or allocate without bound, else None."""
    if isinstance(node, exp.Trim):
        return _trim_problem(node)
    if names & FORMAT_FUNCTIONS:
        return _format_problem(node)
    sized = next((n for n in sorted(names) if n in SIZED_FUNCTIONS), None)
    if sized is not None:
        return _size_problem(node, sized, dialect, max_value_bytes)
    return None


def literal_number(node: exp.Expr) -> float | None:
    """The value of a number literal (signed, parenthesised), or None for anything else."""
    if isinstance(node, exp.Paren):
        return literal_number(node.this)
    if isinstance(node, exp.Neg):
        inner = literal_number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except (TypeError, ValueError):
            return float("inf")
    return None


def _size_problem(node: exp.Func, name: str, dialect: str, max_value_bytes: int) -> Problem | None:
    size = _size_argument(node, name)
    if size is None:
        return None
    value = literal_number(size)
    if value is None:
        if dialect == "postgres":
            return "oversized_argument", f"{name}: the size must be a number literal"
        return None  # SQLite's SQLITE_LIMIT_LENGTH refuses oversized results before building them
    if value > max_value_bytes:
        return "oversized_argument", f"{name}({value:g}) > {max_value_bytes}"
    return None


def _size_argument(node: exp.Func, name: str) -> exp.Expr | None:
    if isinstance(node, exp.Repeat):
        size = node.args.get("times")
    elif isinstance(node, exp.Pad):
        size = node.args.get("expression")
    elif isinstance(node, exp.Space):
        size = node.this
    else:
        args = node.expressions
        position = SIZED_FUNCTIONS[name]
        size = args[position] if position < len(args) else None
    return size if isinstance(size, exp.Expr) else None


def _format_problem(node: exp.Func) -> Problem | None:
    template = node.this if isinstance(node, exp.Format) else _first(node.expressions)
    if not (isinstance(template, exp.Literal) and template.is_string):
        return "costly_argument", "the format of printf/format must be a string literal"
    for match in _CONVERSION.finditer(str(template.this).replace("%%", "")):
        for part in match.groups():
            if part == "*":
                return "costly_argument", "printf/format: '*' widths are not allowed"
            if part is not None and int(part) > MAX_FORMAT_WIDTH:
                return "costly_argument", f"printf/format: width {part} > {MAX_FORMAT_WIDTH}"
    return None


def _trim_problem(node: exp.Trim) -> Problem | None:
    chars = node.args.get("expression")
    if chars is None:
        return None
    if (
        isinstance(chars, exp.Literal)
        and chars.is_string
        and len(str(chars.this)) <= MAX_TRIM_CHARS
    ):
        return None
    return (
        "costly_argument",
        f"trim: the characters must be a string literal of <= {MAX_TRIM_CHARS}",
    )


def _first(items: list[exp.Expr]) -> exp.Expr | None:
    return items[0] if items else None
