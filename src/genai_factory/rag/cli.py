"""``genai-factory index ...`` and ``genai-factory eval retrieval``: index versions and evaluation.

``index list`` shows every version (the active one starred), ``index activate VERSION`` switches the
serving version atomically (a running service follows on its next request), ``index rollback``
activates the version before the active one. ``eval retrieval`` scores the configured retrieval
stack on BEIR-format data and prints nDCG@10, Recall@10, Recall@100 and MRR@10 (``--json``: one
JSON object with exactly those keys). Errors print one ``error:`` line; exit 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from genai_factory.command_runner import ConfigOption, err, run_command, stage_bars
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError

T = TypeVar("T")

index_app = typer.Typer(
    name="index",
    help="List index versions, switch the serving one, roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


@index_app.command("list")
def list_versions(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every index version, oldest first; * marks the serving one."""
    from genai_factory.rag.versions import IndexVersions

    versions = IndexVersions(_settings(config).index_dir()).all()
    if as_json:
        typer.echo(json.dumps([v.model_dump() for v in versions], indent=2))
        return
    if not versions:
        typer.echo("no index version yet: run `genai-factory ingest PATH`")
        return
    for v in versions:
        mark = "*" if v.active else " "
        typer.echo(
            f"{mark} {v.id}  {v.status:8}  {v.documents:6} docs  {v.chunks:7} chunks  "
            f"{v.store}/{v.embedder}  {v.created[:19]}  {v.note}".rstrip()
        )


def _activate(config: Path | None, version: str | None, as_json: bool) -> None:
    from genai_factory.rag.versions import IndexVersions

    versions = IndexVersions(_settings(config).index_dir())
    try:
        target = version or versions.previous_id()
        if target is None:
            _fail("there is no earlier ready version to roll back to")
            return
        info = versions.activate(target)
    except GenAIFactoryError as exc:
        _fail(exc.message)
        return
    if as_json:
        typer.echo(info.model_dump_json())
    else:
        typer.echo(f"active index version: {info.id} ({info.documents} documents)")


@index_app.command("activate")
def activate(
    version: Annotated[str, typer.Argument(help="The version id (see `index list`).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve VERSION from now on (atomic; a running service follows on its next request)."""
    _activate(config, version, as_json)


@index_app.command("rollback")
def rollback(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Activate the ready version before the active one."""
    _activate(config, None, as_json)


def retrieval_command(
    corpus: Annotated[Path, typer.Option("--corpus", help="BEIR corpus.jsonl.")],
    queries: Annotated[Path, typer.Option("--queries", help="BEIR queries.jsonl.")],
    qrels: Annotated[Path, typer.Option("--qrels", help="BEIR qrels .tsv.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score retrieval on BEIR data: nDCG@10, Recall@10, Recall@100, MRR@10."""
    from genai_factory.rag.beir import run_retrieval_eval

    settings = _settings(config)
    for path in (corpus, queries, qrels):
        if not path.is_file():
            _fail(f"no such file: {path}")

    async def work() -> Any:
        with stage_bars(sys.stderr.isatty()) as stage:
            return await run_retrieval_eval(settings, corpus, queries, qrels, progress=stage)

    result = run_command(work)
    if as_json:
        typer.echo(json.dumps(result.metrics))
    else:
        for name, value in result.metrics.items():
            typer.echo(f"{name:11} {value:.4f}")
    err.print(
        f"[dim]{result.queries} queries · {result.documents} documents · {result.chunks} chunks · "
        f"ingest {result.ingest_s:.1f} s · search {result.search_s:.1f} s[/dim]",
        highlight=False,
    )
