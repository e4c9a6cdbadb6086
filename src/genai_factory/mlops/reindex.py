"""``jobs reindex``: build a new index version, compare it with the serving one, switch only if it
is not worse.

The new version is built beside the active one (``ServingIndex.rebuild(activate=False)``), so the
service keeps answering from the old version throughout. Both versions are then asked the same
judged queries and scored with nDCG@10 / Recall@10 (:mod:`genai_factory.rag.metrics`):

* ``mlops.reindex.eval_queries`` + ``eval_qrels`` (BEIR format) when configured: an external,
  human-judged set, the only one that can show a real retrieval improvement;
* otherwise *probe queries* built from the sources themselves: every document's title and each of
  its Markdown section headings, judged relevant to that document. This cannot tell a better
  embedder from a worse one on subtle questions, but it reliably catches the failures a rebuild
  actually causes: documents that went missing, broken parsing, an empty or truncated index, a
  misconfigured embedder. Judging against the recent interaction log instead was rejected: the
  ids retrieved at the time come from the old version, so such a set favours the old version by
  construction.

The new version is activated when ``new nDCG@10 >= old nDCG@10 - max_regression`` (or when there is
no serving version yet, or with ``force``); otherwise it is removed and the old one keeps serving.
Every run is an MLflow run (job ``reindex``) with the parameters, both versions' metrics and the
decision; an activated version is registered under ``mlops.index_name`` as a small JSON descriptor
and becomes that model's ``champion``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from genai_factory.config import Settings
from genai_factory.exceptions import InvalidRequestError
from genai_factory.messages import Document
from genai_factory.rag.beir import load_qrels, load_queries
from genai_factory.rag.embedding import Embedder
from genai_factory.rag.index import KnowledgeIndex, Progress
from genai_factory.rag.loaders import iter_documents
from genai_factory.rag.metrics import evaluate_run
from genai_factory.rag.serving import ServingIndex, build_serving_index

#: Documents each query ranks (Recall@100 is reported too).
RUN_DEPTH = 100
#: Probe queries used at most (a deterministic subset when the sources hold more).
MAX_PROBES = 400
#: The metric the decision is taken on.
DECISION_METRIC = "nDCG@10"
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)

Decision = Literal["activated", "first", "forced", "kept"]
StageProgress = Callable[[str], Progress]


@dataclass
class ReindexResult:
    """What one ``jobs reindex`` run built, measured and decided."""

    version_id: str
    previous_id: str | None
    decision: Decision
    activated: bool
    eval_source: Literal["qrels", "probes"]
    queries: int
    documents: int
    chunks: int
    new_metrics: dict[str, float]
    old_metrics: dict[str, float] | None
    max_regression: float
    sources: list[str]
    skipped: list[str] = field(default_factory=list)
    #: Sources the serving version holds and the new one does not.
    dropped: list[str] = field(default_factory=list)
    run_id: str | None = None
    registered_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        new = self.new_metrics.get(DECISION_METRIC, 0.0)
        old = self.old_metrics.get(DECISION_METRIC) if self.old_metrics else None
        versus = f" vs {old:.4f} ({self.previous_id})" if old is not None else ""
        verdict = {
            "activated": "activated: not worse than the serving version",
            "first": "activated: there was no serving version",
            "forced": "activated (--force)",
            "kept": f"kept {self.previous_id}: the new version is worse; it was removed",
        }[self.decision]
        kind = "probe" if self.eval_source == "probes" else "judged"
        dropped = ""
        if self.dropped:
            shown = ", ".join(self.dropped[:5]) + (" ..." if len(self.dropped) > 5 else "")
            count, before = len(self.dropped), self.previous_id
            dropped = f"\n{count} document(s) of {before} are not in the sources: {shown}"
        return (
            f"index version {self.version_id}: {self.documents} documents, {self.chunks} chunks\n"
            f"{DECISION_METRIC} {new:.4f}{versus} on {self.queries} {kind} queries\n"
            f"{verdict}{dropped}"
        )


def source_paths(settings: Settings) -> list[Path]:
    """The configured sources: ``mlops.reindex.sources``, else ``rag.knowledge_dirs``."""
    return list(settings.mlops.reindex.sources or settings.rag.knowledge_dirs)


def probe_queries(
    documents: Sequence[Document],
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries and judgments built from the documents: each title and section heading.

    A text shared by several documents (two pages both titled "Overview") is one query with all of
    them relevant. At most :data:`MAX_PROBES` queries, chosen deterministically.
    """
    by_text: dict[str, set[str]] = {}
    for document in documents:
        texts = {document.title.strip(), *(h.strip() for h in _HEADING.findall(document.text))}
        for text in texts:
            if len(text) >= 3:
                by_text.setdefault(text, set()).add(document.id)
    chosen = sorted(by_text)
    if len(chosen) > MAX_PROBES:
        step = len(chosen) / MAX_PROBES
        chosen = [chosen[int(i * step)] for i in range(MAX_PROBES)]
    queries = {f"probe-{i}": text for i, text in enumerate(chosen)}
    qrels = {f"probe-{i}": dict.fromkeys(sorted(by_text[text]), 1) for i, text in enumerate(chosen)}
    return queries, qrels


def configured_queries(settings: Settings) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The configured BEIR queries and qrels, restricted to the judged queries."""
    reindex = settings.mlops.reindex
    assert reindex.eval_queries is not None and reindex.eval_qrels is not None
    qrels = load_qrels(reindex.eval_qrels)
    queries = {q: t for q, t in load_queries(reindex.eval_queries).items() if q in qrels and t}
    if not queries:
        raise InvalidRequestError("no query in mlops.reindex.eval_queries has a judgment")
    return queries, {q: qrels[q] for q in queries}


async def score_index(
    index: KnowledgeIndex,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    progress: Progress | None = None,
) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 of one index on the judged queries."""
    run: dict[str, list[str]] = {}
    for done, (query_id, text) in enumerate(queries.items(), start=1):
        hits = await index.search_documents(text, RUN_DEPTH)
        run[query_id] = [hit.chunk.document_id for hit in hits]
        if progress is not None:
            progress(done, len(queries))
    return evaluate_run(run, qrels)


async def _score_version(
    serving: ServingIndex,
    version_id: str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    progress: Progress | None,
) -> dict[str, float]:
    index = serving.open_version(version_id)
    try:
        return await score_index(index, queries, qrels, progress)
    finally:
        await index.aclose()


def decide(
    new: dict[str, float], old: dict[str, float] | None, *, max_regression: float, force: bool
) -> Decision:
    """``first`` with nothing to compare, ``activated`` if not worse, ``forced``, else ``kept``."""
    if old is None:
        return "first"
    if new[DECISION_METRIC] >= old[DECISION_METRIC] - max_regression:
        return "activated"
    return "forced" if force else "kept"


async def _old_metrics(
    serving: ServingIndex,
    previous: str | None,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    progress: StageProgress | None,
) -> dict[str, float] | None:
    """The serving version's metrics; ``None`` when there is none or it is empty."""
    if previous is None or serving.versions.get(previous).chunks == 0:
        return None
    return await _score_version(
        serving, previous, queries, qrels, progress and progress("score serving version")
    )


async def _dropped_sources(
    serving: ServingIndex, previous: str | None, kept: set[str]
) -> list[str]:
    """Sources of documents the serving version holds and the new one will not (for example
    files uploaded through the API, which are not among the configured sources)."""
    if previous is None:
        return []
    index = serving.open_version(previous)
    try:
        return sorted(r.source for r in await index.documents() if r.id not in kept)
    finally:
        await index.aclose()


async def build_and_compare(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    progress: StageProgress | None = None,
) -> ReindexResult:
    """Build, score and (de)activate; no tracking. See the module docstring."""
    sources = source_paths(settings)
    if not sources:
        raise InvalidRequestError("no source to index: set mlops.reindex.sources")
    serving = build_serving_index(settings, embedder)
    previous = serving.active_id()
    documents: list[Document] = []
    skipped: list[str] = []
    for path in sources:
        documents.extend(iter_documents(path, skipped=skipped))
    if not documents:
        raise InvalidRequestError(f"the sources hold no loadable document: {sources}")
    try:
        info, report = await serving.rebuild(
            documents=documents,
            progress=progress and progress("embed"),
            note="jobs reindex",
            activate=False,
        )
        report.skipped = skipped
        configured = settings.mlops.reindex.eval_queries and settings.mlops.reindex.eval_qrels
        max_regression = settings.mlops.reindex.max_regression
        try:
            queries, qrels = (
                configured_queries(settings) if configured else probe_queries(documents)
            )
            new = await _score_version(
                serving, info.id, queries, qrels, progress and progress("score new version")
            )
            old = await _old_metrics(serving, previous, queries, qrels, progress)
            dropped = await _dropped_sources(serving, previous, {d.id for d in documents})
            decision = decide(new, old, max_regression=max_regression, force=force)
        except BaseException:
            serving.versions.remove(info.id)  # never leave a half-judged version behind
            raise
        if decision == "kept":
            serving.versions.remove(info.id)
        else:
            serving.versions.activate(info.id)
            serving.versions.prune(settings.rag.keep_versions)
    finally:
        await serving.aclose()
    return ReindexResult(
        version_id=info.id,
        previous_id=previous,
        decision=decision,
        activated=decision != "kept",
        eval_source="qrels" if configured else "probes",
        queries=len(queries),
        documents=info.documents,
        chunks=info.chunks,
        new_metrics=new,
        old_metrics=old,
        max_regression=max_regression,
        sources=[str(p) for p in sources],
        skipped=skipped,
        dropped=dropped,
    )


def _metric_key(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace('@', '_at_').lower()}"


def _track(settings: Settings, result: ReindexResult) -> None:
    """Log the run to MLflow; register and promote an activated version."""
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.mlops.tracking import import_mlflow, tracked_run

    mlflow = import_mlflow()
    tags = {"decision": result.decision, "index_version": result.version_id}
    with tracked_run(settings, f"reindex-{result.version_id}", job="reindex", tags=tags) as run:
        result.run_id = str(run.info.run_id)
        mlflow.log_params(
            {
                "sources": ",".join(result.sources)[:500],
                "eval_source": result.eval_source,
                "queries": result.queries,
                "max_regression": result.max_regression,
                "previous_version": result.previous_id or "",
                "embedder": settings.embeddings.model,
                "store": settings.rag.store,
            }
        )
        metrics = {_metric_key("new", k): v for k, v in result.new_metrics.items()}
        metrics |= {_metric_key("old", k): v for k, v in (result.old_metrics or {}).items()}
        metrics |= {"documents": result.documents, "chunks": result.chunks}
        metrics["dropped_documents"] = len(result.dropped)
        metrics["activated"] = float(result.activated)
        mlflow.log_metrics(metrics)
        if not result.activated:
            return
        registry = ModelRegistry(settings)
        with tempfile.TemporaryDirectory(prefix="genai-reindex-") as work:
            descriptor = Path(work) / "index-version.json"
            fields = ("version_id", "previous_id", "decision", "documents", "chunks", "sources")
            body = {name: getattr(result, name) for name in fields}
            body["metrics"] = result.new_metrics
            descriptor.write_text(json.dumps(body, indent=2), encoding="utf-8")
            name = settings.mlops.index_name
            registered = registry.register(
                name,
                descriptor,
                run_id=result.run_id,
                tags={"index_version": result.version_id, "note": f"index {result.version_id}"},
                alias=None,
                description=f"index version {result.version_id}",
            )
        registry.promote(name, registered.version)
        result.registered_version = registered.version


async def run_reindex(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    force: bool = False,
    track: bool = True,
    progress: StageProgress | None = None,
) -> ReindexResult:
    """What ``genai-factory jobs reindex`` runs (the configured embedder unless one is given)."""
    import asyncio

    from genai_factory.rag.embedding import get_embedder
    from genai_factory.rag.embedding_cache import CachedEmbedder

    chosen = embedder
    if chosen is None:
        chosen = get_embedder(settings.embeddings)
        if settings.embeddings.cache:
            chosen = CachedEmbedder(chosen, settings.cache_dir())
    try:
        result = await build_and_compare(settings, chosen, force=force, progress=progress)
    finally:
        if embedder is None:
            await chosen.aclose()
    if track:
        await asyncio.to_thread(_track, settings, result)
    return result
