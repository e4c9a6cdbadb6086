"""``genai-factory models``: registered versions of the LLM, the guards and the index.

``models list [NAME]`` shows every version with its aliases; ``models promote NAME VERSION`` makes
a version the ``champion`` (the former one is remembered); ``models rollback NAME`` brings the
former champion back, and can be repeated; ``models register NAME PATH`` logs a file or directory
and registers it (by default as ``challenger``). Errors print one ``error:`` line and exit 2 for the
caller's mistakes (unknown model or version, nothing to roll back to), 1 otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from genai_factory.command_runner import ConfigOption, run_command
from genai_factory.config import load_settings

if TYPE_CHECKING:
    from genai_factory.mlops.registry import ModelRegistry, RegisteredVersion

T = TypeVar("T")

models_app = typer.Typer(
    help="Registered models: list, promote, roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArgument = Annotated[str, typer.Argument(help="The registered model, e.g. genai-llm.")]


def _registry(config: Path | None) -> ModelRegistry:
    from genai_factory.mlops.registry import ModelRegistry

    return ModelRegistry(load_settings(config))


def _line(version: RegisteredVersion) -> str:
    aliases = ",".join(version.aliases) or "-"
    note = version.tags.get("note", "") or version.description
    return (
        f"{version.name:28} v{version.version:<4} {aliases:20} "
        f"{version.created_at:%Y-%m-%d %H:%M}  {note}".rstrip()
    )


def _print(version: RegisteredVersion, as_json: bool, what: str) -> None:
    if as_json:
        typer.echo(json.dumps(version.as_dict()))
    else:
        typer.echo(f"{what}: {version.name} version {version.version}")


def _run(work: Callable[[], T]) -> T:
    """Run blocking registry work with the package's errors turned into an exit code."""

    async def wrapped() -> T:
        return work()

    return run_command(wrapped)


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered version, by model and version, with its aliases."""
    versions = _run(lambda: _registry(config).list(name))
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in versions], indent=2))
        return
    if not versions:
        typer.echo("no registered model yet")
        return
    for version in versions:
        typer.echo(_line(version))


@models_app.command("promote")
def promote(
    name: NameArgument,
    version: Annotated[int, typer.Argument(help="The version to serve.", min=1)],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make VERSION the champion of NAME (the former champion is kept for rollback)."""
    promoted = _run(lambda: _registry(config).promote(name, version))
    _print(promoted, as_json, "champion")


@models_app.command("rollback")
def rollback(name: NameArgument, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Make the previous champion of NAME the champion again."""
    restored = _run(lambda: _registry(config).rollback(name))
    _print(restored, as_json, "champion")


@models_app.command("register")
def register(
    name: NameArgument,
    path: Annotated[Path, typer.Argument(help="The file or directory to register.")],
    alias: Annotated[str, typer.Option(help="Alias of the new version; '' for none.")] = (
        "challenger"
    ),
    description: Annotated[str, typer.Option(help="A note on this version.")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log PATH as an artefact and register it as a new version of NAME."""
    created = _run(
        lambda: _registry(config).register(name, path, alias=alias or None, description=description)
    )
    _print(created, as_json, "registered")
