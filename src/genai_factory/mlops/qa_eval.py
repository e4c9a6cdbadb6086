"""Evaluate one model on SQuAD-format questions: answers, scores, hallucinations, latency, cost.

The dataset is JSON lines with ``id``, ``title``, ``context``, ``question``, ``is_impossible`` and
``answers`` (the shared ``squad_v2/qa.jsonl``). ``limit`` takes a deterministic sample: questions
sorted by id, shuffled with ``seed`` (0), the first ``limit`` kept, so the same limit always means
the same questions. ``titles`` keeps only those articles (a held-out split by article).

Each question is asked in the prompt the service uses (:func:`service_prompt`: with context, the
RAG prompt of :func:`~genai_factory.rag.prompting.build_rag_messages` with the paragraph as source
[1]; closed-book, the chat prompt) at temperature 0 and at most 32 new tokens. The hallucination
rate is the share of given answers with at least one sentence the groundedness guard finds
unsupported by the question's paragraph. Latency is the wall time of each
model call; cost uses ``llm.pricing`` for the answering model (local models cost nothing).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.llm.base import ChatModel
from genai_factory.messages import ChatOptions, Message, ScoredChunk
from genai_factory.mlops.qa import abstained, extract_answer, qa_metrics, score

#: Generation settings of every evaluated answer.
QA_OPTIONS = ChatOptions(max_tokens=32, temperature=0.0, top_p=1.0, repeat_penalty=1.0, seed=0)


@dataclass(frozen=True)
class QAItem:
    """One question with its paragraph and gold answers (empty: unanswerable)."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]


@dataclass
class QAReport:
    """The outcome of :func:`evaluate_qa`: metrics plus every answer, for inspection."""

    model_ref: str
    model: str
    dataset: str
    with_context: bool
    metrics: dict[str, float]
    seconds: float
    answers: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_ref": self.model_ref,
            "model": self.model,
            "dataset": self.dataset,
            "with_context": self.with_context,
            "seconds": round(self.seconds, 2),
            **{k: round(v, 4) for k, v in self.metrics.items()},
        }


def load_questions(
    path: Path, *, limit: int | None = None, titles: Sequence[str] = (), seed: int = 0
) -> list[QAItem]:
    """The questions of ``path`` (filtered by ``titles``, sampled by ``limit``; see module doc)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = () if row.get("is_impossible") else tuple(str(a) for a in row["answers"])
            items.append(
                QAItem(
                    id=str(row["id"]),
                    title=str(row.get("title", "")),
                    context=str(row["context"]),
                    question=str(row["question"]),
                    answers=answers,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(f"{path}:{number}: not a SQuAD question ({exc})") from None
    if titles:
        items = [item for item in items if item.title in set(titles)]
    items.sort(key=lambda item: item.id)
    random.Random(seed).shuffle(items)
    chosen = items[:limit] if limit is not None else items
    if not chosen:
        raise InvalidRequestError(f"no questions selected from {path}")
    return chosen


def load_model(settings: Settings, ref: str) -> ChatModel:
    """The model a reference names (see :func:`~genai_factory.mlops.registry.resolve_llm_files`).

    ``default`` is what the service serves when nothing is promoted: the configured model with its
    adapter (``llm.adapter``: the shipped one unless turned off). ``base`` is the bundled GGUF
    without any adapter when the configured provider runs local weights (llama.cpp), else the configured primary
    model (an OpenAI-compatible server, or the fake in tests). A registered adapter is loaded on
    its recorded base.
    """
    from genai_factory.llm.registry import get_model, provider_capabilities
    from genai_factory.mlops.registry import resolve_llm_files

    files = resolve_llm_files(settings, ref)
    local = provider_capabilities(settings.llm.provider).local_weights
    if not local and ref.strip() in ("base", "default", ""):
        return get_model(settings.llm)
    from genai_factory.llm.llamacpp import LlamaCppModel

    ref = ref.strip()
    if ref in ("", "base", "default"):
        name = settings.llm.model
    elif ref.endswith(".gguf"):
        name = Path(ref).stem
    else:
        name = f"{settings.mlops.llm_name}:{ref}"
    return LlamaCppModel(
        files.model,
        name=name,
        n_ctx=settings.llm.n_ctx,
        n_threads=settings.llm.n_threads,
        adapter_path=files.adapter,
        adapter_merge=settings.llm.adapter_merge,
        # What the service serves takes the configured shift; other files, their stored one.
        decline_shift=settings.llm.decline_shift if ref in ("", "default") else None,
    )


def service_prompt(settings: Settings, item: QAItem, *, with_context: bool) -> list[Message]:
    """The messages the service sends for ``item``: its RAG prompt with the paragraph as the one
    numbered source (kept whole), or its chat prompt (closed-book)."""
    from genai_factory.mlops.training.rag_data import paragraph_chunk
    from genai_factory.rag.prompting import build_chat_messages, build_rag_messages

    system = settings.service.system_prompt
    if not with_context:
        return build_chat_messages(item.question, system_prompt=system)
    hit = ScoredChunk(chunk=paragraph_chunk(item.id, item.title, item.context), score=1.0)
    return build_rag_messages(
        item.question, [hit], system_prompt=system, max_source_chars=max(1, len(item.context))
    )


def _percentile(values: Sequence[float], q: float) -> float:
    from genai_factory.safety_training.evaluation import percentile

    return percentile(values, q)


def _cost(settings: Settings, model: str, prompt: int, completion: int) -> float:
    price = settings.llm.pricing.get(model)
    if price is None:
        return 0.0
    return (prompt * price.input_per_million + completion * price.output_per_million) / 1e6


Tick = Callable[[], None]


async def answer_all(
    settings: Settings,
    model: ChatModel,
    items: Sequence[QAItem],
    *,
    with_context: bool,
    tick: Tick | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Ask every question; return one record per answer and the latency/cost/hallucination sums."""
    from genai_factory.safety.groundedness import GroundednessGuard

    guard = GroundednessGuard()
    records: list[dict[str, Any]] = []
    latencies: list[float] = []
    prompt_tokens = completion_tokens = 0
    cost = 0.0
    for item in items:
        messages = service_prompt(settings, item, with_context=with_context)
        started = time.perf_counter()
        options = QA_OPTIONS.model_copy(update={"answer_from_sources": with_context})
        response = await model.chat(messages, options)
        latencies.append((time.perf_counter() - started) * 1000)
        answer = extract_answer(response.text)
        em, f1 = score(answer, item.answers)
        declined = abstained(answer)
        unsupported = not declined and bool(guard.unsupported(answer, [item.context]))
        prompt_tokens += response.usage.prompt_tokens
        completion_tokens += response.usage.completion_tokens
        cost += response.usage.cost_usd or _cost(
            settings, response.model, response.usage.prompt_tokens, response.usage.completion_tokens
        )
        records.append(
            {
                "id": item.id,
                "question": item.question,
                "answers": list(item.answers),
                "reply": response.text,
                "answer": answer,
                "abstained": declined,
                "unsupported": unsupported,
                "exact_match": em,
                "f1": f1,
            }
        )
        if tick is not None:
            tick()
    answered = [r for r in records if not r["abstained"]]
    extra = {
        "hallucination_rate": (
            sum(r["unsupported"] for r in answered) / len(answered) if answered else 0.0
        ),
        "latency_p50_ms": _percentile(latencies, 50),
        "latency_p95_ms": _percentile(latencies, 95),
        "latency_mean_ms": sum(latencies) / len(latencies) if latencies else 0.0,
        "prompt_tokens": float(prompt_tokens),
        "completion_tokens": float(completion_tokens),
        "cost_usd": cost,
        "cost_usd_per_1k": cost / len(items) * 1000 if items else 0.0,
    }
    return records, extra


async def evaluate_with_model(
    settings: Settings,
    model: ChatModel,
    items: Sequence[QAItem],
    *,
    model_ref: str,
    dataset: str,
    with_context: bool = True,
    tick: Tick | None = None,
) -> QAReport:
    """Evaluate an already built model on ``items`` (the caller closes the model)."""
    started = time.perf_counter()
    records, extra = await answer_all(settings, model, items, with_context=with_context, tick=tick)
    metrics = qa_metrics([r["answer"] for r in records], [item.answers for item in items])
    return QAReport(
        model_ref=model_ref,
        model=model.name,
        dataset=dataset,
        with_context=with_context,
        metrics={**metrics, **extra},
        seconds=time.perf_counter() - started,
        answers=records,
    )
