"""The ``genai-factory`` command line.

``serve`` runs the HTTP service; ``ask``, ``ingest`` and ``search`` work on the same data directory
without a server. Errors print one line to stderr and exit non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genai_factory.agents.cli import tools_app
from genai_factory.command_runner import ConfigOption, err, run_command
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError
from genai_factory.gateway.cli import keys_app
from genai_factory.mlops.cli import eval_qa, eval_run, jobs_app, models_app, train_app
from genai_factory.rag.cli import index_app, retrieval_command
from genai_factory.safety_training.commands import eval_guard, eval_pii
from genai_factory.vision.cli import vision_app

T = TypeVar("T")

app = typer.Typer(
    name="genai-factory",
    help="GenAI Factory: a safe, observable, cost-controlled assistant and its MLOps loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _quiet_until_configured() -> None:
    """Until a command configures logging from its settings: warnings only, on stderr, so stdout
    carries nothing but the command's own output (``--json`` stays parseable), however the app is
    invoked (the script's :func:`main` or an embedding caller)."""
    from genai_factory.observability.logging import configure_logging

    configure_logging("warning")


app.add_typer(keys_app, name="keys")
app.add_typer(tools_app, name="tools")
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(jobs_app, name="jobs")
app.add_typer(vision_app, name="vision")

#: ``genai-factory eval ...``: evaluation commands; each domain registers its own command here.
eval_app = typer.Typer(
    help="Evaluate retrieval, guards and answers on a dataset.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
app.add_typer(index_app, name="index")
eval_app.command("retrieval")(retrieval_command)
eval_app.command("guard")(eval_guard)
eval_app.command("pii")(eval_pii)
eval_app.command("run")(eval_run)
eval_app.command("qa")(eval_qa)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _settings(config: Path | None) -> Settings:
    from genai_factory.observability.logging import configure_logging

    try:
        settings = load_settings(config)
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging("warning" if settings.log_level == "info" else settings.log_level)
    return settings


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


async def _open_components(settings: Settings, *, quiet: bool) -> Any:
    from genai_factory.assistant.assembly import assemble

    parts = assemble(settings)
    await parts.warm_up()
    if await parts.index.count() == 0 and settings.rag.ingest_on_start:
        with _progress("indexing the knowledge base") as bar:
            task = bar.add_task("ingest", total=None)
            await parts.ingest_bundled(
                lambda done, total: bar.update(task, completed=done, total=total)
            )
    parts.ready = True
    return parts


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the GenAI Assistant HTTP service."""
    import uvicorn

    from genai_factory.observability.logging import configure_logging
    from genai_factory.service.app import create_app

    settings = _settings(config)
    bind_host = host or settings.service.host
    bind_port = port or settings.service.port
    # The gateway decides about auth from the address actually bound (docs/gateway.md).
    service = settings.service.model_copy(update={"host": bind_host, "port": bind_port})
    settings = settings.model_copy(update={"service": service})
    configure_logging(settings.log_level, json_logs=settings.observability.json_logs)

    def announce(parts: Any) -> None:
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stall every request for ~0.2 s each few seconds under load.
        gc.freeze()
        url = f"http://{bind_host}:{bind_port}"
        gateway = getattr(application.state, "gateway", None)
        enforcing = bool(getattr(gateway, "enforcing", True))
        auth_note = "API key required" if enforcing else "no API key needed on this address"
        auth_header = " -H 'Authorization: Bearer $GENAI_KEY'" if enforcing else ""
        err.print(
            f"\n[bold green]GenAI Assistant is ready[/bold green] on {url} "
            f"(model {parts.model.name}, {auth_note}).\n"
            "Ask it something:\n"
            f"  curl -s {url}/v1/assistant/generate -H 'content-type: application/json'"
            f"{auth_header} "
            '-d \'{"query": "How do I configure a fallback model?"}\'\n'
            '  .venv/bin/genai-factory ask "How do I configure a fallback model?"\n',
            highlight=False,
            soft_wrap=True,
        )

    try:
        application = create_app(settings, on_ready=announce)
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    uvicorn.run(application, host=bind_host, port=bind_port, log_config=None, access_log=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    config: ConfigOption = None,
    mode: Annotated[str, typer.Option(help="auto | chat | rag | agent")] = "auto",
    max_tokens: Annotated[int | None, typer.Option(help="Cap on answer tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the assistant one question without a running server."""
    if mode not in ("auto", "chat", "rag", "agent"):
        err.print("[red]error:[/red] --mode must be auto, chat, rag or agent", highlight=False)
        raise typer.Exit(2)
    if not question.strip():
        err.print("[red]error:[/red] the question is empty", highlight=False)
        raise typer.Exit(2)
    settings = _settings(config)

    async def work() -> Any:
        parts = await _open_components(settings, quiet=as_json)
        try:
            return await parts.assistant.generate(question, mode=mode, max_tokens=max_tokens)
        finally:
            await parts.aclose()

    answer = run_command(work)
    if as_json:
        sys.stdout.write(answer.model_dump_json(indent=2) + "\n")
        return
    typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\nSources:")
        for citation in answer.citations:
            mark = "*" if citation.cited else " "
            typer.echo(
                f" {mark}[{citation.index}] {citation.title} ({citation.source}) {citation.score:.2f}"
            )
    for planned in answer.plan:
        err.print(
            f"[dim]plan step {planned.index}: {planned.specialist} ({planned.status}) "
            f"{planned.question}[/dim]",
            highlight=False,
        )
    for step in answer.steps:
        shown = json.dumps(step.input)[:120]
        status = "ok" if step.ok else "failed"
        err.print(f"[dim]step {step.index}: {step.tool} {shown} ({status})[/dim]", highlight=False)
    if answer.limit_hit:
        err.print(f"[yellow]the agent stopped at its {answer.stop_reason} limit[/yellow]")
    err.print(
        f"[dim]{answer.route} · {answer.model} · {answer.usage.prompt_tokens}+"
        f"{answer.usage.completion_tokens} tokens · ${answer.usage.cost_usd:.6f} · "
        f"{answer.latency_ms:.0f} ms · trace {answer.trace_id}[/dim]",
        highlight=False,
    )


@app.command()
def ingest(
    path: Annotated[
        Path, typer.Argument(help="A file or directory of .md/.txt/.rst/.html/.pdf documents.")
    ],
    config: ConfigOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Build a new index version from PATH alone; activate it when complete."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add documents to the knowledge index (unchanged ones and duplicates are skipped)."""
    settings = _settings(config)

    async def work() -> Any:
        from genai_factory.assistant.assembly import assemble

        parts = assemble(settings)
        try:
            with _progress("embedding chunks") as bar:
                task = bar.add_task("ingest", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                if full:
                    if not path.exists():
                        raise InvalidRequestError(f"no such file or directory: {path}")
                    _, report = await parts.index.rebuild([path], progress=progress, note=str(path))
                    return report
                return await parts.index.ingest_path(path, progress=progress)
        finally:
            await parts.aclose()

    report = run_command(work)
    version = _active_version(settings)
    if as_json:
        typer.echo(json.dumps({**report.summary(), "version": version, "skipped": report.skipped}))
        return
    typer.echo(
        f"indexed {report.documents_indexed} document(s), {report.chunks_indexed} chunk(s); "
        f"{report.documents_unchanged} unchanged, {report.documents_duplicate} duplicate(s); "
        f"index version {version}"
    )
    for message in report.skipped:
        err.print(f"[yellow]skipped:[/yellow] {message}", highlight=False)


def _active_version(settings: Settings) -> str | None:
    from genai_factory.rag.versions import IndexVersions

    return IndexVersions(settings.index_dir()).active_id()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many chunks.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Show the chunks of the knowledge index most similar to QUERY."""
    settings = _settings(config)

    async def work() -> Any:
        parts = await _open_components(settings, quiet=as_json)
        try:
            return await parts.index.search(query, k)
        finally:
            await parts.aclose()

    hits = run_command(work)
    if as_json:
        rows = [
            {
                "score": round(h.score, 4),
                "document_id": h.chunk.document_id,
                "chunk_id": h.chunk.id,
                "title": h.chunk.title,
                "source": h.chunk.source,
                "heading": h.chunk.heading,
                "text": h.chunk.text,
                "scores": h.scores,
            }
            for h in hits
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        typer.echo(
            f"{rank}. {hit.score:.3f}  {hit.chunk.heading or hit.chunk.title}  ({hit.chunk.source})"
        )
        typer.echo("   " + hit.chunk.text[:200].replace("\n", " "))


def main() -> None:
    """Entry point of the ``genai-factory`` script."""
    from genai_factory.observability.logging import configure_logging

    # Until a command configures logging from its settings: warnings only, and on stderr, so
    # stdout carries nothing but the command's own output (``--json`` stays parseable).
    configure_logging("warning")
    app()


if __name__ == "__main__":
    main()
