"""Evaluation suites: a YAML file naming evaluators, the two candidates and the promotion gates.

```yaml
name: nightly
candidates: {challenger: challenger, champion: champion}   # model references
evaluators:
  - {kind: qa, dataset: ../data/qa.jsonl, limit: 100, with_context: true}
  - {kind: retrieval, corpus: corpus.jsonl, queries: queries.jsonl, qrels: qrels/dev.tsv}
  - kind: safety
    guards: [{guard: injection, dataset: val.csv, text_col: text, label_col: label}]
gates:
  - {metric: qa.f1, min: 0.3}
  - {metric: qa.f1, max_regression: 0.01}
  - {metric: qa.has_answer_f1, min_improvement: 0.05}
```

Relative paths are relative to the suite file; ``~`` and ``$VARIABLES`` are expanded. Metrics are
named ``<evaluator>.<metric>``: ``qa.*`` (SQuAD scores, BLEU, ROUGE-L, hallucination rate),
``latency.*`` and ``cost.*`` (measured while answering the qa questions), ``safety.<guard>.*`` and
``retrieval.*``. The qa evaluator runs each candidate's LLM; the safety evaluator uses each
candidate's registered guard (``<guard_prefix><guard>`` at the same reference) when there is one,
else the configured artefacts; retrieval measures the configured retrieval stack once and gives
both candidates the same figures (an index is not a model reference). :class:`SuiteResult` is
what a run of a suite found (:func:`genai_factory.mlops.evaluation.run_suite`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.mlops.gates import Gate, GateResult


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QAEvaluator(_Strict):
    """SQuAD-format answers of each candidate's LLM (also measures latency and cost)."""

    kind: Literal["qa"]
    dataset: Path
    limit: int | None = Field(default=100, ge=1)
    with_context: bool = True
    titles: list[str] = Field(default_factory=list)
    seed: int = 0


class RetrievalEvaluator(_Strict):
    """BEIR-format retrieval quality of the configured retrieval stack."""

    kind: Literal["retrieval"]
    corpus: Path
    queries: Path
    qrels: Path


class GuardDataset(_Strict):
    """A labelled CSV for one guard."""

    guard: Literal["injection", "toxicity"]
    dataset: Path
    text_col: str = "text"
    label_col: str = "label"
    positive: list[str] = Field(default_factory=lambda: ["1", "true", "yes"])


class SafetyEvaluator(_Strict):
    """Detection quality of guards on labelled texts."""

    kind: Literal["safety"]
    guards: list[GuardDataset] = Field(min_length=1)


Evaluator = Annotated[
    QAEvaluator | RetrievalEvaluator | SafetyEvaluator, Field(discriminator="kind")
]


class Candidates(_Strict):
    """Model references of the challenger and of the champion it is compared with (or none)."""

    challenger: str = "challenger"
    champion: str | None = "champion"


class SuiteSpec(_Strict):
    """A parsed suite file."""

    name: str = Field(default="suite", min_length=1)
    candidates: Candidates = Field(default_factory=Candidates)
    evaluators: list[Evaluator] = Field(min_length=1)
    gates: list[Gate] = Field(default_factory=list)


def _resolve(path: Path, base: Path) -> Path:
    expanded = Path(os.path.expanduser(os.path.expandvars(str(path))))
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


def _resolve_paths(spec: SuiteSpec, base: Path) -> SuiteSpec:
    for evaluator in spec.evaluators:
        if isinstance(evaluator, QAEvaluator):
            evaluator.dataset = _resolve(evaluator.dataset, base)
        elif isinstance(evaluator, RetrievalEvaluator):
            evaluator.corpus = _resolve(evaluator.corpus, base)
            evaluator.queries = _resolve(evaluator.queries, base)
            evaluator.qrels = _resolve(evaluator.qrels, base)
        else:
            for guard in evaluator.guards:
                guard.dataset = _resolve(guard.dataset, base)
    return spec


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "suite"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_suite(path: Path) -> SuiteSpec:
    """Read and validate a suite file; relative paths become absolute (see module doc)."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no such suite file: {path}") from None
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"{path} must hold a mapping with 'evaluators' and 'gates'")
    try:
        spec = SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequestError(f"invalid suite {path}: {_explain(exc)}") from None
    return _resolve_paths(spec, path.resolve().parent)


@dataclass
class SuiteResult:
    """What a suite found: the challenger's metrics, the champion's, and the gates' verdicts."""

    name: str
    passed: bool
    failures: list[str]
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    gates: list[GateResult]
    candidates: dict[str, str]
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "passed": self.passed,
            "failures": self.failures,
            "candidates": self.candidates,
            "metrics": self.metrics,
            "champion_metrics": self.champion_metrics,
            "gates": [g.__dict__ for g in self.gates],
            "run_id": self.run_id,
            "notes": self.notes,
        }
