"""Question answering as evaluated (and fine-tuned): the prompt, abstention and SQuAD scoring.

``eval qa`` asks in the service's own prompt (:func:`genai_factory.mlops.qa_eval.service_prompt`),
as the default fine-tuning rows do (:mod:`genai_factory.mlops.training.rag_data`). The short-answer
prompt :func:`qa_prompt` (with :func:`qa_target`, the answer such a row teaches) remains for
``train data --prompt qa``. The model abstains by replying :data:`ABSTAIN` ("unanswerable") or
the adapter's "I don't know: the sources do not say."; :func:`abstained` accepts the usual
paraphrases ("cannot be answered", "not mentioned", "does not contain", an empty reply), because a
small model rarely says one exact phrase. :func:`extract_answer` drops source citations (``[1]``)
before scoring.

Scoring follows the official SQuAD 2.0 script: answers are normalised (lower case, punctuation,
articles and extra whitespace removed), exact match and token F1 take the best gold answer, and an
unanswerable question scores 1 exactly when the model abstained. BLEU (sacrebleu) and ROUGE-L
(rouge-score) are reported on the answerable questions, against every gold answer.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from genai_factory.messages import Message

#: The reply that means "the context does not answer this".
ABSTAIN = "unanswerable"

_WITH_CONTEXT = (
    "Answer the question with a short phrase copied from the context. If the context does not "
    f"contain the answer, reply exactly: {ABSTAIN}"
)
_CLOSED_BOOK = (
    "Answer the question with a short phrase. If you do not know the answer, reply exactly: "
    f"{ABSTAIN}"
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_ABSTENTION = re.compile(
    r"\b(unanswerable|not answerable|cannot be answered|can ?not answer|can ?not be determined|"
    r"no answer|not (?:mentioned|stated|provided|given|specified)|"
    r"(?:does|do) not (?:say|mention|state|contain)|i (?:don ?t|do not) know|unknown)\b"
)
_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?answer(?:\s+to\s+(?:this|the)\s+question)?(?:\s+is\b\s*:?|\s*:)|a\s*:)\s*",
    re.IGNORECASE,
)


def qa_prompt(context: str | None, question: str) -> list[Message]:
    """The chat messages asking ``question`` about ``context`` (``None``: closed-book)."""
    if context is None:
        return [Message.system(_CLOSED_BOOK), Message.user(f"Question: {question}\nAnswer:")]
    return [
        Message.system(_WITH_CONTEXT),
        Message.user(f"Context: {context}\n\nQuestion: {question}\nAnswer:"),
    ]


def qa_target(answers: Sequence[str]) -> str:
    """What the model should reply: the first gold answer, or :data:`ABSTAIN` when there is none."""
    return answers[0] if answers else ABSTAIN


def extract_answer(reply: str) -> str:
    """The answer in a model's reply: its first non-empty line without an ``Answer:`` or
    ``The answer is`` lead-in and without source citations (``[1]``); scoring itself is unchanged
    (the official normalisation)."""
    for line in reply.strip().splitlines():
        line = _CITATION.sub("", _PREFIX.sub("", line))
        line = " ".join(line.split()).replace(" .", ".").replace(" ,", ",").strip()
        if line:
            return line
    return ""


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def abstained(answer: str) -> bool:
    """True when the answer declines to answer (or is empty once normalised)."""
    normal = normalize_answer(answer)
    return not normal or _ABSTENTION.search(normal) is not None


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (SQuAD F1)."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """``(exact match, F1)`` of one answer; ``golds`` empty means unanswerable."""
    if not golds:
        hit = float(abstained(prediction))
        return hit, hit
    if abstained(prediction):
        return 0.0, 0.0
    return (
        max(exact_match(prediction, g) for g in golds),
        max(token_f1(prediction, g) for g in golds),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _bleu_rouge(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU (0-100) and mean best ROUGE-L F over answerable questions."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics.bleu import BLEU

    pairs = [(p, g) for p, g in zip(predictions, golds, strict=True) if g]
    if not pairs:
        return {"bleu": 0.0, "rouge_l": 0.0}
    hyps = ["" if abstained(p) else p for p, _ in pairs]
    width = max(len(g) for _, g in pairs)
    # sacrebleu takes reference streams; None marks a question with fewer gold answers
    refs: Any = [[g[i] if i < len(g) else None for _, g in pairs] for i in range(width)]
    bleu = BLEU(effective_order=True).corpus_score(hyps, refs).score
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [
        scorer.score_multi(list(g), h)["rougeL"].fmeasure if h else 0.0
        for h, (_, g) in zip(hyps, pairs, strict=True)
    ]
    return {"bleu": float(bleu), "rouge_l": _mean(rouge)}


def qa_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """SQuAD 2.0 scores of answers against gold answers (an empty list: unanswerable).

    ``exact_match`` / ``f1``: over all questions (an abstention is right on an unanswerable one);
    ``has_answer_exact_match`` / ``has_answer_f1``: answerable questions only;
    ``abstention_accuracy``: share of unanswerable questions the model declined;
    ``answered_rate``: share of all questions it answered; ``bleu`` / ``rouge_l``: answerable only.
    """
    if len(predictions) != len(golds):
        raise ValueError("one prediction per question is needed")
    scores = [score(p, g) for p, g in zip(predictions, golds, strict=True)]
    has_answer = [s for s, g in zip(scores, golds, strict=True) if g]
    no_answer = [s[0] for s, g in zip(scores, golds, strict=True) if not g]
    return {
        "n": float(len(golds)),
        "exact_match": _mean([s[0] for s in scores]),
        "f1": _mean([s[1] for s in scores]),
        "has_answer_exact_match": _mean([s[0] for s in has_answer]),
        "has_answer_f1": _mean([s[1] for s in has_answer]),
        "abstention_accuracy": _mean(no_answer),
        "answered_rate": _mean([0.0 if abstained(p) else 1.0 for p in predictions]),
        **_bleu_rouge(predictions, golds),
    }
