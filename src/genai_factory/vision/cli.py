"""``genai-factory vision``: train, evaluate, predict, deploy and run the loop of the image model.

``train`` registers the trained bundle as ``challenger`` of ``vision.model_name`` and promotes it
when the recipe's gates pass (``--output DIR`` also writes the bundle there; ``--no-register``
only writes it). ``eval`` prints one JSON object with ``--json``. ``predict`` classifies image
files. ``deploy --target sagemaker`` creates a SageMaker model, endpoint configuration and endpoint
with boto3 (``--dry-run`` prints the requests instead). ``loop`` runs one drift → retrain → gate →
promote pass. torch is imported by the commands, never at start-up of the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from genai_factory.command_runner import ConfigOption, err, run_command
from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError

T = TypeVar("T")

vision_app = typer.Typer(
    help="The image model: train, eval, predict, deploy, loop (a demonstration, not a diagnostic device).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
RecipeOption = Annotated[
    Path | None, typer.Option("--recipe", help="Training recipe YAML (default: vision.recipe).")
]
#: ``vision loop`` exit code when drift was found but the challenger lost its gate.
EXIT_NOT_PROMOTED = 4


def _settings(config: Path | None) -> Settings:
    from genai_factory.observability.logging import configure_logging

    try:
        settings = load_settings(config)
    except GenAIFactoryError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging("warning" if settings.log_level == "info" else settings.log_level)
    return settings


def _run(work: Callable[[], T]) -> T:
    async def call() -> T:
        return work()

    return run_command(call)


def _epoch_printer(quiet: bool) -> Callable[[int, int, dict[str, float]], None] | None:
    if quiet:
        return None

    def show(epoch: int, total: int, row: dict[str, float]) -> None:
        bar = "#" * (20 * epoch // total)
        err.print(
            f"[{bar:<20}] epoch {epoch}/{total} loss {row['loss']:.4f} "
            f"val AUC {row['val_auc']:.4f} acc {row['val_accuracy']:.4f}",
            highlight=False,
            markup=False,
        )

    return show


@vision_app.command("train")
def train_command(
    train: Annotated[Path, typer.Option("--train", help="Training set (.npz or class folders).")],
    val: Annotated[
        Path, typer.Option("--val", help="Validation set: threshold, early stop, gates.")
    ],
    recipe_file: RecipeOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the model bundle to this folder.")
    ] = None,
    no_register: Annotated[
        bool,
        typer.Option("--no-register", help="Do not log, register or promote (needs --output)."),
    ] = False,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Override the recipe.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch progress.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train → evaluate → log to MLflow → register as challenger → gates → promote."""
    from genai_factory.vision.orchestrator import TrainingOrchestrator
    from genai_factory.vision.recipe import load_recipe

    settings = _settings(config)
    if no_register and output is None:
        err.print("[red]error:[/red] --no-register needs --output", highlight=False)
        raise typer.Exit(2)

    def work() -> Any:
        overrides = {"epochs": epochs} if epochs else {}
        recipe = load_recipe(recipe_file or settings.vision.recipe, **overrides)
        stage = None if quiet else (lambda name: err.print(f"[bold]vision train[/bold] → {name}"))
        orchestrator = TrainingOrchestrator(
            settings,
            recipe,
            on_stage=stage,
            on_epoch=_epoch_printer(quiet),
            register=not no_register,
        )
        return orchestrator.run(train, val, keep=output)

    report = _run(work)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    e = report.evaluation
    typer.echo(
        f"val AUC {e.auc:.4f}  accuracy {e.accuracy:.4f}  sensitivity {e.sensitivity:.4f}  "
        f"specificity {e.specificity:.4f}  threshold {e.threshold:.3f}  ({report.seconds:.0f} s)"
    )
    for gate in report.gates:
        typer.echo(gate.line())
    if report.version is not None:
        verdict = "promoted to champion" if report.promoted else "kept as challenger"
        typer.echo(f"registered {settings.vision.model_name} v{report.version}: {verdict}")
    if output is not None:
        typer.echo(f"bundle written to {output}")


@vision_app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option("--data", help="Labelled set (.npz or class folders).")],
    model: Annotated[
        str, typer.Option("--model", help="champion | challenger | VERSION | bundled | PATH")
    ] = "champion",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Override the bundle's threshold.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a model on a labelled set: AUC, accuracy, sensitivity, specificity, n."""
    settings = _settings(config)

    def work() -> Any:
        from genai_factory.vision.data import load_dataset
        from genai_factory.vision.evaluation import evaluate
        from genai_factory.vision.predictor import Predictor
        from genai_factory.vision.resolve import resolve_bundle

        ref = resolve_bundle(settings, model)
        predictor = Predictor.load(ref.path, version=ref.version)
        labelled = load_dataset(data, predictor.manifest.labels, predictor.size)
        cut = predictor.manifest.threshold if threshold is None else threshold
        result = evaluate(predictor.probabilities(labelled.images), labelled.labels, cut)
        return {**result.as_dict(), "model_version": ref.version, "data": str(data)}

    found = _run(work)
    if as_json:
        typer.echo(json.dumps(found))
        return
    for key in ("auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy", "ece"):
        typer.echo(f"{key:18} {found[key]:.4f}")
    typer.echo(
        f"{'n':18} {found['n']}  (model {found['model_version']}, threshold {found['threshold']:.3f})"
    )


@vision_app.command("predict")
def predict_command(
    images: Annotated[list[Path], typer.Argument(help="PNG, JPEG or DICOM files.")],
    model: Annotated[str, typer.Option("--model", help="champion | VERSION | bundled | PATH")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Classify image files with the served model (or --model)."""
    settings = _settings(config)

    def work() -> Any:
        from genai_factory.vision.inference import LocalClassifier

        classifier = LocalClassifier.open(settings, model or None)
        return classifier.classify([path.read_bytes() for path in images])

    try:
        result = _run(work)
    except OSError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    rows = [
        {"file": str(path), **item}
        for path, item in zip(images, result["predictions"], strict=True)
    ]
    if as_json:
        typer.echo(json.dumps({**result, "predictions": rows}))
        return
    for row in rows:
        typer.echo(f"{row['file']}: {row['label']} (p={row['probability']:.3f})")
    typer.echo(f"model {result['model_version']} — {result['disclaimer']}")


@vision_app.command("deploy")
def deploy_command(
    target: Annotated[str, typer.Option("--target", help="Only 'sagemaker'.")] = "sagemaker",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the SageMaker requests, send nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create (or update) the SageMaker endpoint of the image model with boto3."""
    settings = _settings(config)
    if target != "sagemaker":
        err.print(f"[red]error:[/red] unknown target {target!r}; only 'sagemaker'", highlight=False)
        raise typer.Exit(2)

    def work() -> Any:
        from genai_factory.vision.sagemaker import SageMakerDeployer, deployment_plan

        plan = deployment_plan(settings.vision.sagemaker)
        if dry_run:
            return {"dry_run": True, "requests": plan}
        return SageMakerDeployer.from_settings(settings.vision.sagemaker).deploy(plan)

    typer.echo(json.dumps(_run(work), indent=2, default=str))


@vision_app.command("loop")
def loop_command(
    current: Annotated[
        Path | None,
        typer.Option("--current", help="Images to check for drift (.npz); default: served inputs."),
    ] = None,
    new_data: Annotated[
        Path | None, typer.Option("--new-data", help="New labelled images to retrain with (.npz).")
    ] = None,
    train: Annotated[Path | None, typer.Option("--train", help="Base training set.")] = None,
    val: Annotated[
        Path | None, typer.Option("--val", help="Fixed validation set of the gates.")
    ] = None,
    recipe_file: RecipeOption = None,
    force: Annotated[bool, typer.Option("--force", help="Retrain even without drift.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One pass: drift on inputs and confidence → retrain → gates on a fixed set → promote."""
    settings = _settings(config)

    def work() -> Any:
        from genai_factory.vision.loop import run_vision_loop

        return run_vision_loop(
            settings,
            current=current,
            new_data=new_data,
            train=train,
            val=val,
            recipe_file=recipe_file,
            force=force,
            on_step=lambda step: err.print(f"[bold]vision loop[/bold] → {step}", highlight=False),
        )

    result = _run(work)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        typer.echo(result.summary())
    if result.retrained and not result.promoted:
        raise typer.Exit(EXIT_NOT_PROMOTED)
