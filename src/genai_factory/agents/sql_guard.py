"""``check_select``: let through exactly one read-only ``SELECT`` and nothing else.

The statement is parsed with sqlglot and the whole syntax tree is checked against an allowlist:

* exactly one statement, whose root is a ``SELECT`` or a set operation of them (``UNION``,
  ``INTERSECT``, ``EXCEPT``), possibly under ``WITH`` (``WITH RECURSIVE`` included);
* no node anywhere that writes, changes the schema, manages transactions or the connection
  (``INSERT``/``UPDATE``/``DELETE``/``MERGE`` also inside a CTE, ``CREATE``, ``DROP``, ``ALTER``,
  ``PRAGMA``, ``ATTACH``, ``DETACH``, ``BEGIN``/``COMMIT``, ``SET`` ...), no ``SELECT ... INTO``,
  no ``FOR UPDATE``/``FOR SHARE``, no bound parameters, and no statement that sqlglot could only
  keep as an unparsed ``Command``;
* every node is of a known read-only kind (anything unfamiliar is refused, never guessed at);
* no table from a short deny-list (raw pages, table-valued pragmas, the server's secrets) and
  no function from the deny-list (file and extension access, sleeping, settings, locks, server
  administration, functions that run SQL text of their own);
* bounded arguments for the few built-ins that can run or allocate without bound in one call
  (:mod:`genai_factory.agents.sql_cost`).

What is returned is sqlglot's rendering of the checked tree (comments dropped, every identifier
quoted, PostgreSQL's folding of unquoted names to lower case applied), and that rendering must
parse back to a tree that passes the same checks and renders identically: the text that runs is
the text that was checked. SQL that sqlglot cannot parse is refused. The executor adds
engine-level limits on top (read-only connection, authorizer, time and row caps): this module is
the first of several layers, not the only one.
"""

from __future__ import annotations

import re
from typing import Final

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from genai_factory.agents.sql_cost import costly_call
from genai_factory.exceptions import InvalidRequestError

DIALECTS: Final = frozenset({"sqlite", "postgres"})
DEFAULT_MAX_CHARS: Final = 20_000
DEFAULT_MAX_VALUE_BYTES: Final = 200_000
MAX_NODES: Final = 5_000

#: Functions refused by name (lower case; a schema prefix such as ``pg_catalog.`` does not help).
DENIED_FUNCTIONS: Final = frozenset(
    {
        # SQLite: extensions, files, internals, functions that evaluate SQL text
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "fts5",
        "fsdir", "zipfile", "sqlar_compress", "sqlar_uncompress", "eval", "sha3_query",
        "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr", "sqlite_stmt", "dbstat",
        # PostgreSQL: sleeping, server files, settings, sequences, notifications, admin
        "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_read_file", "pg_read_binary_file",
        "pg_stat_file", "pg_current_logfile", "set_config", "current_setting",
        "nextval", "setval", "lastval", "txid_current", "pg_current_xact_id", "pg_notify",
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_promote", "pg_import_system_collations", "pg_export_snapshot", "pg_prewarm",
        "loread", "lowrite", "ts_stat", "ts_rewrite", "pg_stat_statements_reset",
        # other engines' file readers (refused whatever the dialect)
        "read_csv", "read_csv_auto", "read_parquet", "read_json", "read_json_auto",
        "read_text", "read_blob", "copy", "system", "shell",
    }
)  # fmt: skip

#: Function name prefixes refused (table-valued pragmas, large objects, dblink, admin families).
DENIED_FUNCTION_PREFIXES: Final = (
    "pragma_", "lo_", "dblink", "pg_ls_", "pg_read_", "pg_file_", "pg_logdir", "pg_advisory",
    "pg_try_advisory", "pg_stat_reset", "pg_create_", "pg_drop_", "pg_copy_", "pg_replication_",
    "pg_logical_", "pg_wal_", "pg_switch_", "pg_backup_", "pg_start_backup", "pg_stop_backup",
    "pg_log_", "query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml",
    "database_to_xml", "sqlite_", "shell_",
)  # fmt: skip

#: Harmless ``sqlite_`` functions that the prefix rule above would otherwise refuse.
ALLOWED_SQLITE_FUNCTIONS: Final = frozenset(
    {"sqlite_version", "sqlite_source_id", "sqlite_compileoption_used", "sqlite_offset"}
)

#: Tables and views refused by name: raw pages, file systems, secrets of the server.
DENIED_RELATIONS: Final = frozenset(
    {
        "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr", "sqlite_stmt", "dbstat", "fsdir",
        "zipfile", "pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings",
        "pg_hba_file_rules", "pg_ident_file_mappings", "pg_file_settings", "pg_largeobject",
        "pg_statistic", "pg_stat_activity", "pg_settings",
    }
)  # fmt: skip

#: Words that PostgreSQL reads as values, not columns, when unquoted (``SELECT user``).
_PG_VALUE_WORDS: Final = frozenset(
    {
        "user", "current_user", "session_user", "current_role", "current_schema",
        "current_catalog", "current_date", "current_time", "current_timestamp", "localtime",
        "localtimestamp",
    }
)  # fmt: skip

#: Text that sqlglot emits verbatim (type names, keywords, function names) must be one plain word.
_PLAIN_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: Statement roots that are a query.
_QUERY_ROOTS: Final = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)

#: Node kinds refused with a specific reason (checked before the allowlist).
_DENIED_NODES: Final[tuple[tuple[type[exp.Expr], str], ...]] = (
    (exp.Insert, "write_statement"),
    (exp.Update, "write_statement"),
    (exp.Delete, "write_statement"),
    (exp.Merge, "write_statement"),
    (exp.Create, "schema_change"),
    (exp.Drop, "schema_change"),
    (exp.Alter, "schema_change"),
    (exp.TruncateTable, "schema_change"),
    (exp.Pragma, "pragma"),
    (exp.Attach, "attach"),
    (exp.Detach, "attach"),
    (exp.Transaction, "transaction"),
    (exp.Commit, "transaction"),
    (exp.Rollback, "transaction"),
    (exp.Set, "set_statement"),
    (exp.Into, "select_into"),
    (exp.Lock, "locking_clause"),
    (exp.Placeholder, "parameters"),
    (exp.Parameter, "parameters"),
    (exp.SessionParameter, "parameters"),
    (exp.PropertyEQ, "assignment"),
    (exp.Command, "unsupported_statement"),
)

#: Read-only node kinds besides functions and operators.
_ALLOWED_NODES: Final[tuple[type[exp.Expr], ...]] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
    exp.TableAlias, exp.From, exp.Join, exp.Table, exp.Identifier, exp.Column, exp.Star,
    exp.Alias, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
    exp.Fetch, exp.Distinct, exp.Literal, exp.Boolean, exp.Null, exp.Case, exp.DataType,
    exp.DataTypeParam, exp.Window, exp.WindowSpec, exp.Tuple, exp.Values, exp.Bracket,
    exp.Interval, exp.Var, exp.Lateral, exp.Filter, exp.WithinGroup, exp.IgnoreNulls,
    exp.RespectNulls, exp.Slice, exp.HexString, exp.BitString, exp.ByteString, exp.National,
    exp.RawString, exp.JSONPath, exp.JSONPathPart, exp.Rollup, exp.Cube, exp.GroupingSets,
    exp.Any, exp.All, exp.Qualify, exp.JSONKeyValue, exp.LimitOptions, exp.UnicodeString,
    exp.Pseudocolumn,
)  # fmt: skip

#: Operator and function families, allowed as a whole (functions still pass the deny-list).
_ALLOWED_FAMILIES: Final = (exp.Func, exp.Binary, exp.Unary, exp.Predicate)


class SQLRejected(InvalidRequestError):
    """The SQL is not a single read-only query. ``reason`` is a short machine-readable code."""

    code = "sql_rejected"

    def __init__(self, reason: str, detail: str = "") -> None:
        message = f"SQL rejected: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.reason = reason
        self.detail = detail


def check_select(
    sql: str,
    dialect: str,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> str:
    """Return the normalised text of ``sql`` if it is one read-only query, else raise.

    Args:
        sql: the statement as the caller sent it.
        dialect: ``"sqlite"`` or ``"postgres"``.
        max_chars: longer input is refused before parsing.
        max_value_bytes: the largest size accepted by ``randomblob``, ``repeat`` ...

    Raises:
        SQLRejected: with ``reason`` one of ``empty``, ``nul_byte``, ``too_long``,
            ``parse_error``, ``too_complex``, ``multiple_statements``, ``not_a_query``,
            ``write_statement``, ``schema_change``, ``pragma``, ``attach``, ``transaction``,
            ``set_statement``, ``select_into``, ``locking_clause``, ``parameters``,
            ``assignment``, ``unsupported_statement``, ``unsupported_syntax``,
            ``forbidden_function``, ``forbidden_relation``, ``oversized_argument``,
            ``costly_argument``, ``unstable_sql``.
        ValueError: ``dialect`` is not supported (a programming error, not a bad request).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unsupported SQL dialect {dialect!r}; expected one of {sorted(DIALECTS)}")
    _check_text(sql, max_chars)
    tree = _parse_one(sql, dialect)
    _check_tree(tree, dialect, max_value_bytes)
    _quote_identifiers(tree, dialect)
    text = _render(tree, dialect)
    # Round trip: the rendered text must parse back to a tree that passes and renders the same,
    # so that nothing sqlglot emits verbatim can change what the statement means.
    again = _parse_one(text, dialect)
    _check_tree(again, dialect, max_value_bytes)
    if _render(again, dialect) != text:
        raise SQLRejected("unstable_sql", "the normalised statement does not parse back to itself")
    return text


def function_denied(name: str) -> bool:
    """True if a function called ``name`` (any case, any schema prefix) may not be called."""
    base = name.lower().rsplit(".", 1)[-1].strip('"')
    if base in ALLOWED_SQLITE_FUNCTIONS:
        return False
    return base in DENIED_FUNCTIONS or base.startswith(DENIED_FUNCTION_PREFIXES)


def relation_denied(name: str) -> bool:
    """True if a table or view called ``name`` (any case) may not be read."""
    base = name.lower()
    return base in DENIED_RELATIONS or base.startswith("pragma_")


def _check_text(sql: str, max_chars: int) -> None:
    if "\x00" in sql:
        raise SQLRejected("nul_byte")
    if len(sql) > max_chars:
        raise SQLRejected("too_long", f"{len(sql)} characters, at most {max_chars}")
    if not sql.strip():
        raise SQLRejected("empty")


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except RecursionError:
        raise SQLRejected("too_complex", "nesting too deep") from None
    except SqlglotError as exc:
        raise SQLRejected("parse_error", _first_line(str(exc))) from None
    except Exception as exc:  # sqlglot may raise plain errors on malformed input
        raise SQLRejected("parse_error", type(exc).__name__) from None
    if not statements:
        raise SQLRejected("empty")
    if len(statements) > 1:
        raise SQLRejected("multiple_statements", f"{len(statements)} statements")
    return statements[0]


def _check_tree(tree: exp.Expr, dialect: str, max_value_bytes: int) -> None:
    _check_root(tree)
    _check_nodes(tree, dialect, max_value_bytes)


def _quote_identifiers(tree: exp.Expr, dialect: str) -> None:
    """Quote every identifier, folding unquoted ones the way the engine would.

    SQLite compares identifiers case-insensitively, quoted or not; PostgreSQL folds unquoted
    ones to lower case (ASCII letters only), so ``Name`` becomes ``"name"``.
    """
    for ident in tree.find_all(exp.Identifier):
        if ident.quoted:
            continue
        text = str(ident.this)
        if dialect == "postgres":
            if text.lower() in _PG_VALUE_WORDS and _PLAIN_WORD.match(text):
                continue
            text = text.translate(_ASCII_LOWER)
        ident.set("this", text)
        ident.set("quoted", True)


def _render(tree: exp.Expr, dialect: str) -> str:
    try:
        return tree.sql(dialect=dialect, comments=False, normalize_functions=False)
    except (SqlglotError, RecursionError) as exc:
        raise SQLRejected("unsupported_syntax", type(exc).__name__) from None


def _check_root(tree: exp.Expr) -> None:
    if isinstance(tree, _QUERY_ROOTS):
        return
    for kind, reason in _DENIED_NODES:
        if isinstance(tree, kind):
            raise SQLRejected(reason, _node_label(tree))
    raise SQLRejected("not_a_query", _node_label(tree))


def _check_nodes(tree: exp.Expr, dialect: str, max_value_bytes: int) -> None:
    for count, node in enumerate(tree.walk(), start=1):
        if count > MAX_NODES:
            raise SQLRejected("too_complex", f"more than {MAX_NODES} syntax nodes")
        for kind, reason in _DENIED_NODES:
            if isinstance(node, kind):
                raise SQLRejected(reason, _node_label(node))
        if isinstance(node, exp.Func):
            _check_function(node, dialect, max_value_bytes)
        elif isinstance(node, exp.Table) and relation_denied(node.name):
            raise SQLRejected("forbidden_relation", node.name)
        elif not isinstance(node, _ALLOWED_NODES + _ALLOWED_FAMILIES):
            raise SQLRejected("unsupported_syntax", type(node).__name__)
        _check_verbatim(node)


def _check_verbatim(node: exp.Expr) -> None:
    """Refuse odd text in the places sqlglot renders without quoting (type names, keywords)."""
    if isinstance(node, exp.Var):
        raw: object = node.this
    elif isinstance(node, exp.DataType):
        raw = node.args.get("kind")
    elif isinstance(node, exp.Anonymous):
        raw = node.this
    else:
        return
    if isinstance(raw, str) and not _PLAIN_WORD.match(raw):
        raise SQLRejected("unsupported_syntax", f"{type(node).__name__} {raw[:40]!r}")


def _check_function(node: exp.Func, dialect: str, max_value_bytes: int) -> None:
    names = _function_names(node)
    denied = next((n for n in sorted(names) if function_denied(n)), None)
    if denied is not None:
        raise SQLRejected("forbidden_function", denied)
    problem = costly_call(node, names, dialect, max_value_bytes)
    if problem is not None:
        raise SQLRejected(*problem)


def _function_names(node: exp.Func) -> set[str]:
    """Every name the function may go by: as written for unknown ones, sqlglot's names otherwise."""
    if isinstance(node, exp.Anonymous):
        this = node.this
        name = this.name if isinstance(this, exp.Expr) else str(this)
        return {name.lower()}
    try:
        sql_names = node.sql_names()
    except NotImplementedError:  # abstract function families have no SQL name of their own
        sql_names = []
    return {type(node).__name__.lower(), *(n.lower() for n in sql_names)}


def _node_label(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "invalid SQL"
