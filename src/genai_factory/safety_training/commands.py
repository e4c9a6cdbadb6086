"""``genai-factory eval guard`` and ``genai-factory eval pii``: measure the guards on a dataset.

``eval guard`` prints precision, recall, F1, false-positive rate and p50/p95 latency of the
injection or toxicity guard (exactly as the service runs it: rules and classifier) on a labelled
CSV file. ``eval pii`` reads the presidio-evaluator JSON format and prints token-level precision,
recall and F1 per entity type and overall, stating the entity mapping it used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from genai_factory.safety.guard import GuardContext
from genai_factory.safety_training.evaluation import PRESIDIO_MAPPING, evaluate_binary, evaluate_pii

GUARD_CHOICES = ("injection", "toxicity")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _resources(config: Path | None) -> Any:
    from genai_factory.config import load_settings
    from genai_factory.exceptions import GenAIFactoryError
    from genai_factory.observability.logging import configure_logging
    from genai_factory.safety.artefacts import load_resources
    from genai_factory.safety.registry import artefact_dirs

    try:
        settings = load_settings(config)
        configure_logging("warning" if settings.log_level == "info" else settings.log_level)
        return load_resources(artefact_dirs(settings))
    except GenAIFactoryError as exc:
        raise _fail(exc.message) from None


def _read_rows(path: Path, text_col: str, label_col: str, positives: list[str]) -> list[Any]:
    from genai_factory.safety_training.training import read_labelled_csv

    try:
        rows = read_labelled_csv(path, text_col, label_col, positives)
    except FileNotFoundError:
        raise _fail(f"dataset not found: {path}") from None
    except KeyError as exc:
        raise _fail(f"column {exc} is not in {path}") from None
    if not rows:
        raise _fail(f"no rows in {path}")
    return rows


def eval_guard(
    guard: Annotated[str, typer.Option(help="injection | toxicity")],
    dataset: Annotated[Path, typer.Option(help="A CSV file with a text and a label column.")],
    text_col: Annotated[str, typer.Option(help="The text column.")] = "text",
    label_col: Annotated[str, typer.Option(help="The label column.")] = "label",
    positive: Annotated[
        list[str] | None, typer.Option(help="Label value(s) meaning 'should be flagged'.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Precision, recall, F1, false-positive rate and latency of a guard on a labelled CSV."""
    from genai_factory.safety.injection import InjectionGuard
    from genai_factory.safety.toxicity import ToxicityGuard

    if guard not in GUARD_CHOICES:
        raise _fail(f"--guard must be one of {', '.join(GUARD_CHOICES)}")
    positives = positive or ["1", "true", "yes"]
    rows = _read_rows(dataset, text_col, label_col, positives)
    resources = _resources(config)
    checker = (
        InjectionGuard(resources.injection)
        if guard == "injection"
        else ToxicityGuard(resources.toxicity)
    )
    context = GuardContext(surface="input")
    report = evaluate_binary(lambda text: checker.check(text, context).flagged, rows)
    result = {
        "guard": guard,
        "dataset": str(dataset),
        "positive_labels": positives,
        "artefact": resources.versions()[guard],
        **report.as_dict(),
    }
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    typer.echo(f"{guard} guard on {dataset} ({result['n']} texts, {result['positives']} positive)")
    typer.echo(f"  artefact            {result['artefact'] or 'none (rules only)'}")
    for name in ("precision", "recall", "f1", "false_positive_rate"):
        typer.echo(f"  {name:<19} {result[name]:.4f}")
    typer.echo(
        f"  latency p50 / p95   {result['latency_p50_ms']:.2f} / {result['latency_p95_ms']:.2f} ms"
    )


def eval_pii(
    dataset: Annotated[Path, typer.Option(help="presidio-evaluator JSON (full_text, spans).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Token-level precision, recall and F1 of the PII detector per entity type and overall."""
    from genai_factory.safety.pii import PIIDetector

    try:
        records = json.loads(dataset.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(f"dataset not found: {dataset}") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"{dataset} is not JSON: {exc}") from None
    if not isinstance(records, list):
        raise _fail(f"{dataset} must hold a list of records")
    resources = _resources(config)
    detector = PIIDetector(resources.names)
    report = evaluate_pii(
        lambda text: [(f.start, f.end, f.kind) for f in detector.find(text)], records
    ).as_dict()
    result = {
        "dataset": str(dataset),
        "records": len(records),
        "scoring": "token level, like presidio-evaluator; unmapped types count as no entity",
        "entity_mapping": PRESIDIO_MAPPING,
        "name_tagger": resources.versions()["pii_names"],
        **report,
    }
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    typer.echo(f"PII detection on {dataset} ({len(records)} records; {result['scoring']})")
    typer.echo("entity mapping: " + ", ".join(f"{k}→{v}" for k, v in PRESIDIO_MAPPING.items()))
    typer.echo(f"  {'entity':<16} {'precision':>9} {'recall':>7} {'f1':>7} {'tokens':>7}")
    for kind, scores in [*report["per_entity"].items(), ("OVERALL", report["overall"])]:
        typer.echo(
            f"  {kind:<16} {scores['precision']:>9.4f} {scores['recall']:>7.4f} "
            f"{scores['f1']:>7.4f} {scores['support_tokens']:>7}"
        )
    typer.echo(
        f"  latency p50 / p95 per text: {report['latency_p50_ms']:.2f} / "
        f"{report['latency_p95_ms']:.2f} ms"
    )
