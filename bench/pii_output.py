"""The output PII guard: what it redacts in answers, against the detector it filters.

Two figures, each for the detector alone (what the output guard redacted before it had an output
policy, and what the input guard and the logs still use) and for the output policy
(:class:`genai_factory.safety.pii.OutputPolicy`):

* ``recall``: token-level precision and recall on the shared presidio-style PII set
  (``pii/dev.json``) when the answer repeats personal data that the retrieved source holds (the
  record's text is both the source and the answer): the case the output guard exists for;
* ``technical``: how many of the ordinary answers in ``tests/safety/data/technical_answers.txt``
  (product guide sentences, general knowledge, loopback addresses) are changed, with no sources
  and with every chunk of the bundled user guide as the sources.

    .venv/bin/python bench/pii_output.py [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from genai_factory.config import bundled_docs_dir
from genai_factory.safety.artefacts import load_resources, packaged_dir
from genai_factory.safety.guard import Finding
from genai_factory.safety.pii import OutputPolicy, PIIDetector
from genai_factory.safety_training.evaluation import evaluate_pii

ROOT = Path(__file__).resolve().parents[1]
TECHNICAL = ROOT / "tests" / "safety" / "data" / "technical_answers.txt"

Finder = Callable[[str, Sequence[str]], list[Finding]]


def technical_answers() -> list[str]:
    lines = TECHNICAL.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def guide_chunks() -> list[str]:
    from genai_factory.rag.loaders import load_path
    from genai_factory.rag.splitting import split_document

    return [c.text for d in load_path(bundled_docs_dir()) for c in split_document(d)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    detector = PIIDetector(load_resources([packaged_dir()]).names)
    policy = OutputPolicy(detector)
    finders: dict[str, Finder] = {
        "detector (before)": lambda text, sources: detector.find(text),
        "output policy": lambda text, sources: policy.filter(text, detector.find(text), sources),
    }
    records = json.loads((args.datasets / "pii" / "dev.json").read_text(encoding="utf-8"))
    answers = technical_answers()
    guide = guide_chunks()
    for name, find in finders.items():
        report = evaluate_pii(
            lambda text, find=find: [(f.start, f.end, f.kind) for f in find(text, (text,))],
            records,
        ).as_dict()
        print(f"{name}: PII set ({len(records)} records), answer = source")
        for kind, scores in [*report["per_entity"].items(), ("OVERALL", report["overall"])]:
            print(
                f"  {kind:<16} P {scores['precision']:.4f}  R {scores['recall']:.4f}  "
                f"F1 {scores['f1']:.4f}"
            )
        bare = sum(bool(find(a, ())) for a in answers)
        with_guide = sum(bool(find(a, guide)) for a in answers)
        print(
            f"  technical answers changed: {bare} of {len(answers)} without sources, "
            f"{with_guide} of {len(answers)} with the user guide as sources"
        )


if __name__ == "__main__":
    main()
