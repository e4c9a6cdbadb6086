"""``genai-factory train agent-data``: grounded SQL-agent training rows from a database.

Reads the schema and values of ``--database`` (default: ``agents.database``, else the bundled shop
database) with the agent's read-only SQL tools, generates and runs templated questions, and writes
four rows per question in the agent's two-stage format (see
:mod:`~genai_factory.mlops.training.agent_data`). ``--exclude`` names JSONL files of questions and
queries (an evaluation set) that must not appear. Errors print one ``error:`` line (exit 2 for bad
input).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from genai_factory.command_runner import ConfigOption, err, run_command, stage_bars
from genai_factory.config import load_settings
from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError


def _database(database: str | None, config: Path | None) -> str:
    if database is None:
        try:
            found = load_settings(config).agent_database()
        except GenAIFactoryError as exc:
            raise InvalidRequestError(exc.message) from None
        if found is None:
            raise InvalidRequestError("no database: pass --database or set agents.database")
        database = found
    is_url = "://" in database and not database.startswith("sqlite:///")
    path = Path(database.removeprefix("sqlite:///"))
    if not is_url and not path.is_file():
        raise InvalidRequestError(f"no such database file: {path}")
    return database


def agent_data_command(
    out: Annotated[Path, typer.Option("--out", help="The training JSONL to write.")],
    database: Annotated[
        str | None,
        typer.Option(
            "--database", help="SQLite path or postgresql:// URL (default: agents.database)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many questions (4 rows each).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the phrasing and the sample.")] = 0,
    exclude: Annotated[
        list[Path] | None,
        typer.Option(
            "--exclude",
            help="JSONL of questions/queries (question, sql) that must not appear (repeat).",
        ),
    ] = None,
    per_kind: Annotated[
        int,
        typer.Option(
            "--per-kind", help="At most this many questions of one kind (0: no cap).", min=0
        ),
    ] = 24,
    choice_every: Annotated[
        int,
        typer.Option(
            "--choice-every",
            help="Keep the two tool-choice rows of every N-th question only (1: all).",
            min=1,
        ),
    ] = 1,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Generate grounded (question, SQL, result, answer) rows for the SQL agent from a database."""
    from genai_factory.mlops.training.agent_data import (
        build_agent_rows,
        read_exclusions,
        write_rows,
    )

    if limit is not None and limit < 1:
        err.print("[red]error:[/red] --limit must be at least 1", highlight=False)
        raise typer.Exit(2)

    async def work() -> dict[str, Any]:
        db = _database(database, config)
        pairs = [pair for path in exclude or [] for pair in read_exclusions(path)]
        with stage_bars(not as_json and err.is_terminal) as start:
            progress = start("questions") if start is not None else None
            rows, report = await build_agent_rows(
                db,
                limit=limit,
                seed=seed,
                exclude=pairs,
                per_kind=per_kind or None,
                choice_every=choice_every,
                on_progress=progress,
            )
        report.out = str(out)
        written = write_rows(rows, out)
        if written == 0:
            raise InvalidRequestError(f"no question could be made from {db}")
        return asdict(report)

    report = run_command(work)
    if as_json:
        typer.echo(json.dumps(report))
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(report["kinds"].items()))
    typer.echo(
        f"wrote {report['rows']} rows ({report['examples']} questions: {kinds}) to {out}; "
        f"{report['candidates']} candidates, {report['excluded']} excluded, "
        f"{report['off_grammar']} outside the SQL grammar, {report['empty']} without a value, "
        f"{report['capped']} over the cap of a kind"
    )
