"""What every ``genai-factory`` command shares: the ``--config`` option and running a coroutine
with the package's errors turned into one line on stderr (exit 2 for the caller's errors, 1 else)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError

T = TypeVar("T")

err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (also GENAI_CONFIG).", show_default=False
    ),
]


def run_command(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a package error becomes ``error: ...`` on stderr and a non-zero exit."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, InvalidRequestError) else 1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


#: Starts a named stage of a long job; returns its ``(done, total)`` progress callback.
StageStarter = Callable[[str], Callable[[int, int], None]]


@contextmanager
def stage_bars(enabled: bool) -> Iterator[StageStarter | None]:
    """One progress bar per stage of a long job, on stderr; ``None`` when ``enabled`` is false
    (not a terminal), so the job runs without drawing anything."""
    if not enabled:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bars:

        def stage(name: str) -> Callable[[int, int], None]:
            task = bars.add_task(name, total=None)
            return lambda done, total: bars.update(task, completed=done, total=total)

        yield stage
