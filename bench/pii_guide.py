"""The output PII guard on the user guide's own sentences: how many answers it damages.

The common answer of the RAG route quotes a sentence of a retrieved chunk. So every chunk of the
bundled user guide is cut into sentences (as the reranker reads them:
:func:`genai_factory.rag.rerank.sentences`), and each sentence is filtered as an answer with its
own chunk as the only source: ``OutputPolicy.filter(sentence, detector.find(sentence), [chunk])``.
The guide holds a few examples of personal data on purpose (the demo shop's customers, such as
Ada Lovelace, an e-mail address, a phone number and a street address the PII pages quote, a
database URL with a password): redacting those is right, so a sentence counts as a false
positive when anything else in it is redacted (:data:`GUIDE_EXAMPLES`). Prints the counts and
each changed sentence with what was redacted.

    .venv/bin/python bench/pii_guide.py [--docs DIR] [--quiet]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from genai_factory.config import bundled_docs_dir
from genai_factory.safety.artefacts import load_resources, packaged_dir
from genai_factory.safety.pii import OutputPolicy, PIIDetector
from genai_factory.safety.pii_names import NameTagger

#: Personal data the guide quotes as examples, by kind: a redaction counts as intended when its
#: value holds one of these (a name's words, or a structured value).
GUIDE_EXAMPLES: dict[str, tuple[str, ...]] = {
    "PERSON": (
        "Ada",
        "Lovelace",
        "Grace",
        "Hopper",
        "Alan",
        "Turing",
        "Hedy",
        "Lamarr",
        "Barbara",
        "Liskov",
    ),
    "EMAIL_ADDRESS": ("jane.doe@example.com",),
    "URL_CREDENTIALS": ("user:pass@",),
    "PHONE_NUMBER": ("0961-7596216",),
    "LOCATION": ("33 avenue de Provence",),
}


@dataclass(frozen=True)
class Changed:
    """A guide sentence the output guard would change, and the spans it would redact."""

    sentence: str
    redacted: tuple[tuple[str, str], ...]  # (kind, value)

    @property
    def false_positive(self) -> bool:
        """Whether anything but the guide's examples of personal data is redacted."""
        return not all(
            any(example in value for example in GUIDE_EXAMPLES.get(kind, ()))
            for kind, value in self.redacted
        )


def guide_sentences(docs: Path | None = None) -> Iterator[tuple[str, str]]:
    """``(sentence, chunk)`` for every sentence of every chunk of the user guide."""
    from genai_factory.rag.loaders import load_path
    from genai_factory.rag.rerank import sentences
    from genai_factory.rag.splitting import split_document

    for document in load_path(docs or bundled_docs_dir()):
        for chunk in split_document(document):
            for sentence in sentences(chunk.text, limit=10_000):
                yield sentence, chunk.text


def changed_sentences(tagger: NameTagger | None, pairs: list[tuple[str, str]]) -> list[Changed]:
    """The sentences the output policy would change, each with its own chunk as the source."""
    detector = PIIDetector(tagger)
    policy = OutputPolicy(detector)
    changed = []
    for sentence, chunk in pairs:
        kept = policy.filter(sentence, detector.find(sentence), [chunk])
        if kept:
            spans = tuple((f.kind, sentence[f.start : f.end]) for f in kept)
            changed.append(Changed(sentence, spans))
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=None, help="default: the bundled guide")
    parser.add_argument("--quiet", action="store_true", help="only the figures")
    args = parser.parse_args()
    tagger = load_resources([packaged_dir()]).names
    pairs = list(guide_sentences(args.docs))
    changed = changed_sentences(tagger, pairs)
    wrong = [item for item in changed if item.false_positive]
    print(f"guide sentences changed by the output PII guard: {len(changed)} of {len(pairs)}")
    print(f"  only the guide's examples of personal data redacted: {len(changed) - len(wrong)}")
    print(f"  false positives (anything else redacted): {len(wrong)}")
    if not args.quiet:
        for item in sorted(changed, key=lambda c: not c.false_positive):
            spans = ", ".join(f"{kind} {value!r}" for kind, value in item.redacted)
            mark = "FP" if item.false_positive else "ok"
            print(f"  {mark} [{spans}] {item.sentence}")


if __name__ == "__main__":
    main()
