"""Retrieval quality on BEIR SciFact, through exactly the ``genai-factory eval retrieval`` code path.

Every row runs :func:`genai_factory.rag.beir.run_retrieval_eval` (what the CLI command runs) with the
default settings, changing only ``rag.retrieval`` for the anchors computed side by side:

* ``default``       the embedded default stack: hybrid BM25 + MiniLM, z-score fusion, sentence reranker
* ``bm25``          keyword only (SQLite FTS5 BM25, Porter stemming)
* ``dense``         MiniLM only (chunks, best chunk per document)
* ``rrf``           plain reciprocal rank fusion of those two (k = 60, equal weights), no reranker
* ``zscore``        z-score fusion, no reranker

It prints nDCG@10, Recall@10, Recall@100 and MRR@10 per row, the ratio of each row's nDCG@10 to the
``bm25`` and ``rrf`` rows, and the issue's published anchors for the 300 BEIR test queries. The judged
queries are ``qrels/test.tsv`` when present, else ``qrels/dev.tsv`` (the 809 SciFact train claims: the
test split is held out here, so these are development figures). Corpus vectors are cached by content
hash in ``<data dir>/cache``: the first run embeds ~18,000 chunks and ~45,000 sentences (tens of
minutes on 2 cores), later runs take about a minute per row.

    .venv/bin/python bench/retrieval_scifact.py [--data ../shared/datasets/scifact] [--rows default,bm25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from genai_factory.config import load_settings
from genai_factory.rag.beir import run_retrieval_eval

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "scifact"

#: row name -> overrides of ``rag.retrieval`` (empty: the defaults, i.e. the product's settings)
ROWS: dict[str, dict[str, Any]] = {
    "default": {},
    "bm25": {"mode": "keyword", "reranker": "none"},
    "dense": {"mode": "dense", "reranker": "none"},
    "rrf": {"fusion": "rrf", "reranker": "none", "dense_weight": 1.0, "keyword_weight": 1.0},
    "zscore": {"reranker": "none"},
}

#: nDCG@10 on the 300 BEIR SciFact test queries, as given in the issue.
PUBLISHED = {
    "BM25 (bm25s, stemmed)": 0.686,
    "all-MiniLM-L6-v2 dense": 0.645,
    "RRF of those two": 0.717,
    "BM25 + MiniLM cross-encoder": 0.688,
}


def _qrels(data: Path) -> Path:
    test = data / "qrels" / "test.tsv"
    return test if test.exists() else data / "qrels" / "dev.tsv"


async def _row(name: str, data: Path, data_dir: Path | None) -> dict[str, Any]:
    retrieval = load_settings().rag.retrieval.model_dump()
    retrieval.update(ROWS[name])
    overrides: dict[str, Any] = {"rag": {"retrieval": retrieval}}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = load_settings(**overrides)
    started = time.perf_counter()
    result = await run_retrieval_eval(
        settings, data / "corpus.jsonl", data / "queries.jsonl", _qrels(data)
    )
    return {
        "row": name,
        **result.metrics,
        "queries": result.queries,
        "ingest_s": round(result.ingest_s, 1),
        "search_s": round(result.search_s, 1),
        "ms_per_query": round(1000 * result.search_s / max(result.queries, 1), 1),
        "total_s": round(time.perf_counter() - started, 1),
    }


def _print(rows: list[dict[str, Any]]) -> None:
    by_name = {r["row"]: r for r in rows}
    header = f"{'row':8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}"
    print(header + f" {'/bm25':>6} {'/rrf':>6} {'ms/q':>6} {'ingest s':>8} {'total s':>8}")
    for r in rows:
        ratios = [
            f"{r['nDCG@10'] / by_name[a]['nDCG@10']:6.3f}" if a in by_name else f"{'-':>6}"
            for a in ("bm25", "rrf")
        ]
        print(
            f"{r['row']:8} {r['nDCG@10']:8.4f} {r['Recall@10']:7.4f} {r['Recall@100']:7.4f} "
            f"{r['MRR@10']:7.4f} {' '.join(ratios)} {r['ms_per_query']:6.1f} "
            f"{r['ingest_s']:8.1f} {r['total_s']:8.1f}"
        )
    print("\npublished nDCG@10 anchors (300 BEIR test queries, from the issue):")
    for label, value in PUBLISHED.items():
        print(f"  {label:30} {value:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the vector cache lives")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines too")
    args = parser.parse_args()
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = set(names) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    print(f"SciFact: {args.data} (qrels {_qrels(args.data).name})", flush=True)
    rows = []
    for name in names:  # one after another: the CPU is shared and embedding is the cost
        rows.append(asyncio.run(_row(name, args.data, args.data_dir)))
        print(f"  done {name}: nDCG@10 {rows[-1]['nDCG@10']:.4f}", flush=True)
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    print()
    _print(rows)


if __name__ == "__main__":
    main()
