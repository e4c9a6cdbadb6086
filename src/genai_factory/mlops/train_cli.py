"""``genai-factory train``: build the fine-tuning set, fine-tune the LLM, train the guards.

``train agent-data`` writes grounded SQL-agent rows from a database (``agent_data_cli``);
``train data`` splits SQuAD-format questions by article title and writes the training JSONL (plus
the held-out questions for ``eval qa``); ``train llm`` fine-tunes the served GGUF with LoRA, exports
a new GGUF and registers it as the ``challenger``; ``train guard`` retrains one safety classifier
and registers its artefacts. Each run is an MLflow run. Errors print one ``error:`` line (exit 2
for bad input, 1 otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from genai_factory.command_runner import ConfigOption, err, run_command
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError
from genai_factory.mlops.agent_data_cli import agent_data_command
from genai_factory.mlops.training.data import DEFAULT_UNANSWERABLE_SHARE

T = TypeVar("T")

train_app = typer.Typer(
    help="Fine-tune the LLM and train the guard classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
RegisterOption = Annotated[
    bool, typer.Option("--register/--no-register", help="Register the result as challenger.")
]
DatasetsOption = Annotated[
    Path,
    typer.Option("--datasets", envvar="GENAI_DATASETS", help="The evaluation datasets directory."),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None


def _run(work: Callable[[], T]) -> T:
    """Run blocking work with the package's error handling (one line, exit code)."""

    async def call() -> T:
        return work()

    return run_command(call)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


@train_app.command("data")
def data_command(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format questions (JSONL).")],
    out: Annotated[Path, typer.Option("--out", help="The training JSONL to write.")],
    titles_from: Annotated[
        Path | None,
        typer.Option(
            "--titles-from",
            help='Training titles: a split file ({"train": [...]}) or one title per line.',
        ),
    ] = None,
    holdout_share: Annotated[
        float, typer.Option("--holdout-share", help="Share of titles held out (no --titles-from).")
    ] = 0.5,
    heldout_out: Annotated[
        Path | None,
        typer.Option("--heldout-out", help="Also write the held-out questions (for eval qa)."),
    ] = None,
    feedback: Annotated[
        bool,
        typer.Option("--feedback/--no-feedback", help="Add well-rated interactions of the log."),
    ] = True,
    unanswerable_share: Annotated[
        float,
        typer.Option(
            "--unanswerable-share",
            help="Most unanswerable SQuAD rows may make up of the set (1: keep all).",
        ),
    ] = DEFAULT_UNANSWERABLE_SHARE,
    seed: Annotated[int, typer.Option(help="Seed of the unanswerable sample.")] = 0,
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt",
            help="rag: the assistant's RAG prompt with numbered sources (what the service "
            "sends); qa: the short-answer SQuAD prompt.",
        ),
    ] = "rag",
    docs: Annotated[
        list[Path] | None,
        typer.Option(
            "--docs",
            help="Also build grounded questions from these documents (repeat; --prompt rag).",
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build the fine-tuning set: SQuAD split by article title, plus liked interactions, plus
    questions built from documents (``--docs``)."""
    from genai_factory.mlops.training import data as training_data

    if not 0.0 <= unanswerable_share <= 1.0:
        _fail("--unanswerable-share must be between 0 and 1")
    if prompt not in ("rag", "qa"):
        _fail("--prompt must be rag or qa")
    if docs and prompt != "rag":
        _fail("--docs builds RAG-prompt rows: use it with --prompt rag")
    settings = _settings(config)

    def work() -> dict[str, Any]:
        records = training_data.read_squad(squad)
        if titles_from is not None:
            split = training_data.split_by_titles(records, training_data.read_titles(titles_from))
        else:
            split = training_data.split_titles((r.title for r in records), holdout_share)
        titled = [r for r in records if r.title in split.train]
        train_records = training_data.cap_unanswerable(titled, unanswerable_share, seed)
        examples = _squad_rows(settings, train_records, prompt, seed)
        documents = _document_rows(settings, docs or [], seed)
        liked = training_data.feedback_examples(settings) if feedback else []
        written = training_data.write_examples([*examples, *documents, *liked], out)
        split_file = out.with_name(f"{out.stem}.split.json")
        split_file.write_text(json.dumps(split.as_dict(), indent=2), encoding="utf-8")
        report: dict[str, Any] = {
            "out": str(out),
            "examples": written,
            "squad": len(examples),
            "unanswerable": sum(r.is_impossible for r in train_records),
            "unanswerable_dropped": len(titled) - len(train_records),
            "unanswerable_share": unanswerable_share,
            "seed": seed,
            "feedback": len(liked),
            "documents": len(documents),
            "prompt": prompt,
            "split": split.as_dict(),
            "split_file": str(split_file),
        }
        if heldout_out is not None:
            held = [r for r in records if r.title in split.heldout]
            report["heldout_questions"] = training_data.write_records(held, heldout_out)
            report["heldout_out"] = str(heldout_out)
        return report

    report = _run(work)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(
        f"wrote {report['examples']} examples to {out} ({report['squad']} SQuAD, "
        f"{report['unanswerable']} of them unanswerable, {report['unanswerable_dropped']} "
        f"unanswerable left out; {report['documents']} from documents; "
        f"{report['feedback']} from feedback; {prompt} prompt)"
    )
    typer.echo(f"train titles:    {', '.join(report['split']['train'])}")
    typer.echo(f"held-out titles: {', '.join(report['split']['heldout'])}")
    if heldout_out is not None:
        typer.echo(f"wrote {report['heldout_questions']} held-out questions to {heldout_out}")


def _squad_rows(settings: Settings, records: list[Any], prompt: str, seed: int) -> list[Any]:
    from genai_factory.mlops.training import data as training_data
    from genai_factory.mlops.training.rag_data import squad_rag_examples

    if prompt == "qa":
        return training_data.squad_examples(records)
    return squad_rag_examples(records, system_prompt=settings.service.system_prompt, seed=seed)


def _document_rows(settings: Settings, paths: list[Path], seed: int) -> list[Any]:
    from genai_factory.mlops.training.rag_data import document_chunks, document_examples

    if not paths:
        return []
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InvalidRequestError(f"no such file or directory: {', '.join(missing)}")
    rag = settings.rag
    chunks = document_chunks(paths, chunk_tokens=rag.chunk_tokens, overlap=rag.chunk_overlap)
    return document_examples(
        chunks,
        system_prompt=settings.service.system_prompt,
        source_chars=rag.source_chars,
        sources=rag.top_k,
        seed=seed,
    )


def _progress_lines(steps: int) -> Any:
    """Hooks printing ``step N/M loss L (T s)`` lines on stderr, every 5 % of ``steps``."""
    import time

    from genai_factory.mlops.training.finetune import Hooks

    started = time.monotonic()
    every = max(1, steps // 20)

    def stage(name: str) -> None:
        err.print(f"{name} ({time.monotonic() - started:.0f} s)", highlight=False)

    def step(index: int, loss: float) -> None:
        if index % every == 0 or index == steps:
            elapsed = time.monotonic() - started
            err.print(f"step {index}/{steps} loss {loss:.3f} ({elapsed:.0f} s)", highlight=False)

    return Hooks(stage=stage, step=step)


@contextmanager
def _training_bars(steps: int, enabled: bool) -> Iterator[Any]:
    """A stage spinner and a step bar showing the latest loss."""
    from genai_factory.mlops.training.finetune import Hooks

    if not enabled:
        yield Hooks()
        return
    if not err.is_terminal:
        # A log file or a pipe: no live bars, so a plain line per stage and per 5 % of the steps.
        yield _progress_lines(steps)
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with bars:
        stage_task = bars.add_task("starting", total=None, loss="-")
        step_task = bars.add_task("steps", total=steps, loss="-", visible=False)

        def stage(name: str) -> None:
            bars.update(stage_task, description=name)
            if name == "training":
                bars.update(step_task, visible=True)

        def step(index: int, loss: float) -> None:
            bars.update(step_task, completed=index, loss=f"{loss:.3f}")

        yield Hooks(stage=stage, step=step)
        bars.update(stage_task, description="done", total=1, completed=1)


@train_app.command("llm")
def llm_command(
    data: Annotated[Path, typer.Option("--data", help="Training JSONL (see `train data`).")],
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 150,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-3,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per step.")] = 4,
    max_len: Annotated[
        int, typer.Option("--max-len", help="Longest example in tokens (longer ones skipped).")
    ] = 384,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle and the adapters.")] = 0,
    targets: Annotated[
        str,
        typer.Option(
            help="Layers LoRA adapts: attention (q/k/v/o projections), all (also the MLP's "
            "gate/up/down projections), or a comma-separated list of projection names."
        ),
    ] = "attention",
    base: Annotated[
        str, typer.Option(help="Model to start from: base, champion, challenger, N, or a .gguf.")
    ] = "base",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default: <data_dir>/training/llm-<time>)."),
    ] = None,
    register: RegisterOption = True,
    register_as: Annotated[
        str,
        typer.Option(
            "--register-as",
            help="adapter: register the LoRA adapter (a few MB, served on its base); "
            "merged: the merged F16 GGUF.",
        ),
    ] = "adapter",
    agent: Annotated[
        bool | None,
        typer.Option(
            "--agent/--no-agent",
            help="Register as the agent's adapter (mlops.agent_llm_name); default: when every "
            "row comes from `train agent-data`.",
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """LoRA-fine-tune the LLM on CPU, export a GGUF adapter and a merged F16 GGUF, register one
    of them as challenger."""
    from genai_factory.mlops.training.agent_data import all_agent_rows
    from genai_factory.mlops.training.finetune import train_llm
    from genai_factory.mlops.training.lora import LoraSettings, lora_targets

    settings = _settings(config)
    if register_as not in ("adapter", "merged"):
        _fail("--register-as must be adapter or merged")
    if not data.is_file():
        _fail(f"no such file: {data}")
    try:
        lora = LoraSettings(
            steps=steps,
            lr=lr,
            rank=rank,
            batch_size=batch_size,
            max_len=max_len,
            seed=seed,
            targets=lora_targets(targets),
        )
    except InvalidRequestError as exc:
        _fail(exc.message)
        return

    for_agent = agent if agent is not None else all_agent_rows(data)
    if for_agent and (register_as != "adapter" or base != "base"):
        _fail(
            "--agent trains an adapter on the bundled model: use --base base --register-as adapter"
        )
    model_name = settings.mlops.agent_llm_name if for_agent else settings.mlops.llm_name

    def work() -> Any:
        with _training_bars(steps, not as_json) as hooks:
            return train_llm(
                settings,
                data,
                lora,
                base_ref=base,
                out=out,
                register=register,
                register_as="merged" if register_as == "merged" else "adapter",
                hooks=hooks,
                model_name=model_name,
            )

    result = _run(work)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.as_dict().items() if k != "losses"}))
        return
    typer.echo(f"adapter: {result.adapter} ({result.adapter_bytes / 1e6:.1f} MB)")
    typer.echo(f"model:   {result.gguf}")
    typer.echo(
        f"loss:    {result.first_loss:.3f} → {result.last_loss:.3f} over {steps} steps "
        f"({result.examples} examples, {result.skipped_too_long} too long, "
        f"{result.train_seconds:.0f} s)"
    )
    typer.echo(f"run:     {result.run_id}")
    if result.registered_version is not None:
        typer.echo(
            f"registered {model_name} version {result.registered_version} "
            f"({', '.join(result.aliases) or 'no alias'})"
        )


train_app.command("agent-data")(agent_data_command)


@train_app.command("calibrate")
def calibrate_command(
    adapter: Annotated[
        Path, typer.Option("--adapter", help="The GGUF LoRA adapter to calibrate (its base: llm).")
    ],
    dataset: Annotated[
        Path, typer.Option("--dataset", help="SQuAD-format questions held out from training.")
    ],
    skip: Annotated[
        int,
        typer.Option(
            "--skip", min=0, help="Leave out the first N of the sample (the ones you evaluate on)."
        ),
    ] = 300,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Questions to calibrate on.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Shuffle seed of the sample.")] = 0,
    min_abstention: Annotated[
        float,
        typer.Option(
            "--min-abstention",
            min=0.0,
            max=1.0,
            help="Abstention accuracy the shift must keep on unanswerable questions.",
        ),
    ] = 0.55,
    write: Annotated[
        bool, typer.Option("--write/--dry-run", help="Store the shift in <adapter>.json.")
    ] = True,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Choose the adapter's decline shift (llm.decline_shift) on held-out questions."""
    from genai_factory.llm.llamacpp import LlamaCppModel, bundled_gguf_path
    from genai_factory.mlops import calibration
    from genai_factory.mlops.evaluation import _progress
    from genai_factory.mlops.qa_eval import load_questions

    settings = _settings(config)
    if not adapter.is_file():
        _fail(f"no such adapter file: {adapter}")

    async def work() -> calibration.Calibration:
        items = load_questions(dataset, seed=seed)[skip : skip + limit]
        if not items:
            raise InvalidRequestError(f"no questions left in {dataset} after skipping {skip}")
        model = LlamaCppModel(
            settings.llm.model_path or bundled_gguf_path(),
            n_ctx=settings.llm.n_ctx,
            n_threads=settings.llm.n_threads,
            adapter_path=adapter,
            adapter_merge=settings.llm.adapter_merge,
            decline_shift=0.0,
        )
        try:
            with _progress(err.is_terminal, "calibrate", len(items)) as tick:
                probes = await calibration.probe_all(settings, model, items, tick=tick)
        finally:
            await model.aclose()
        return calibration.choose_shift(probes, min_abstention=min_abstention)

    result = run_command(work)
    source = f"{dataset.name} (seed {seed}, skip {skip}, {result.questions} questions)"
    written = calibration.write_shift(adapter, result, source=source) if write else None
    if as_json:
        payload = {**result.as_dict(), "written": str(written) if written else None}
        typer.echo(json.dumps(payload))
        return
    typer.echo("shift   F1    answerable F1  abstention  answered")
    for row in result.table:
        mark = "  <- chosen" if row["shift"] == result.shift else ""
        typer.echo(
            f"{row['shift']:+5.2f}  {row['f1']:.3f}  {row['has_answer_f1']:.3f}"
            f"          {row['abstention_accuracy']:.3f}       {row['answered_rate']:.3f}{mark}"
        )
    where = f"; written to {written}" if written else " (dry run: nothing written)"
    typer.echo(f"decline shift {result.shift:+.2f} on {result.questions} questions{where}")


@train_app.command("guard")
def guard_command(
    guard: Annotated[str, typer.Option("--guard", help="injection | toxicity | names")],
    datasets: DatasetsOption = Path("../shared/datasets"),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Artefact directory (default: <data_dir>/training/guard-...)."),
    ] = None,
    register: RegisterOption = True,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain one guard classifier, track the run, register the artefacts as challenger."""
    from genai_factory.mlops.training.guards import GUARDS, train_guard

    if guard not in GUARDS:
        _fail(f"unknown guard {guard!r}: choose one of {', '.join(GUARDS)}")
    settings = _settings(config)

    def work() -> Any:
        with err.status(f"training the {guard} guard"):
            return train_guard(settings, guard, datasets, out=out, register=register)

    result = _run(work)
    if as_json:
        typer.echo(json.dumps(result.__dict__))
        return
    typer.echo(f"artefacts: {result.directory} ({result.version})")
    for name, value in sorted(result.metrics.items()):
        typer.echo(f"  {name:40} {value:.4f}")
    typer.echo(f"run:       {result.run_id}")
    if result.registered_version is not None:
        typer.echo(
            f"registered {settings.mlops.guard_prefix}{guard} version "
            f"{result.registered_version} ({', '.join(result.aliases) or 'no alias'})"
        )
