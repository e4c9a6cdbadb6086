"""The MLOps loop closing by itself, on embedded defaults (no network, no API key).

1. **Yesterday** — the service answers 40 questions about the product from its user guide.
2. **Today** — users start asking about subjects the index does not hold (sourdough bread, the
   rings of Saturn, monarch butterflies, espresso): the assistant has nothing to cite.
3. ``genai-factory jobs loop --once`` — the drift monitor compares the two windows of the
   interaction log and finds drift; the re-index job builds a new index version from the configured
   sources (the user guide plus the articles in ``articles/``), scores it against the serving one
   on a judged query set, and activates it because it is better; MLflow records every step and the
   registry promotes the new index version to ``champion``.
4. **After** — the same questions are asked again and are answered from the new articles.

Every request goes through the real service (``create_app``: gateway, guards, the interaction log,
SmolLM2 and MiniLM). The demo compresses a day into minutes: once phase 1 is done its log rows are
moved 24 hours into the past, so the drift monitor's default windows (the last 24 hours against the
24 hours before) hold one phase each. Nothing else is simulated.

Run: ``make demo`` or ``.venv/bin/python examples/drift_demo/run.py [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ARTICLES = HERE / "articles"
QUESTIONS = HERE / "questions.jsonl"
PHASE_SIZE = 40


def _write_eval_set(directory: Path) -> tuple[Path, Path]:
    """A judged query set: each article question is relevant to its article's document."""
    from genai_factory.rag.loaders import document_id

    queries, qrels = directory / "queries.jsonl", directory / "qrels.tsv"
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    with queries.open("w", encoding="utf-8") as q, qrels.open("w", encoding="utf-8") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i, row in enumerate(rows):
            q.write(json.dumps({"_id": f"q{i}", "text": row["question"]}) + "\n")
            r.write(f"q{i}\t{document_id(ARTICLES.name, row['article'])}\t1\n")
    return queries, qrels


def _write_config(data_dir: Path) -> Path:
    from genai_factory.config import bundled_docs_dir

    queries, qrels = _write_eval_set(data_dir)
    config = {
        "data_dir": str(data_dir),
        "log_level": "warning",
        "observability": {"access_log": False},
        "mlops": {
            "reindex": {
                "sources": [str(bundled_docs_dir()), str(ARTICLES)],
                "eval_queries": str(queries),
                "eval_qrels": str(qrels),
            },
            "drift": {"min_samples": 30},
        },
    }
    path = data_dir / "demo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _ask_all(config: Path, questions: list[str], label: str) -> list[dict[str, Any]]:
    """Ask the running service every question over HTTP (in process); returns the answers."""
    from fastapi.testclient import TestClient

    from genai_factory.config import load_settings
    from genai_factory.service import create_app

    answers = []
    with TestClient(create_app(load_settings(config))) as client:
        deadline = time.monotonic() + 600
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"the service did not get ready: {client.get('/readyz').text}")
            time.sleep(0.3)
        for i, question in enumerate(questions, 1):
            response = client.post(
                "/v1/assistant/generate", json={"query": question, "max_tokens": 48}
            )
            if response.status_code != 200:
                raise SystemExit(f"request failed: {response.status_code} {response.text}")
            answers.append(response.json())
            print(f"\r  {label}: {i}/{len(questions)}", end="", flush=True)
    print()
    return answers


def _coverage(answers: list[dict[str, Any]]) -> dict[str, Any]:
    article_names = {p.name for p in ARTICLES.glob("*.md")}
    cited = [a for a in answers if a["citations"]]
    from_articles = [
        a for a in answers if a["citations"] and a["citations"][0]["source"] in article_names
    ]
    tops = [a["citations"][0]["score"] for a in cited]
    return {
        "requests": len(answers),
        "answered_from_sources": len(cited),
        "top_citation_is_an_article": len(from_articles),
        "median_top_score": round(statistics.median(tops), 3) if tops else None,
    }


def _backdate(config: Path, hours: float) -> int:
    """Move every logged request ``hours`` into the past (the "yesterday" of the demo)."""
    import sqlalchemy as sa

    from genai_factory.config import load_settings
    from genai_factory.observability.interaction_store import (
        interactions_table,
        open_interaction_engine,
    )

    engine = open_interaction_engine(load_settings(config).interaction_database_url())
    try:
        with engine.begin() as connection:
            rows = connection.execute(
                sa.select(interactions_table.c.id, interactions_table.c.created_at)
            ).all()
            for row_id, created in rows:
                connection.execute(
                    interactions_table.update()
                    .where(interactions_table.c.id == row_id)
                    .values(created_at=created - timedelta(hours=hours))
                )
        return len(rows)
    finally:
        engine.dispose()


def _cli(config: Path, *words: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "genai-factory"), *words, "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _mlflow_contents(config: Path) -> dict[str, Any]:
    from genai_factory.config import load_settings
    from genai_factory.mlops.registry import ModelRegistry
    from genai_factory.mlops.tracking import configure, import_mlflow

    settings = load_settings(config)
    mlflow = import_mlflow()
    experiment = configure(settings)
    runs = mlflow.search_runs([experiment], output_format="list")
    versions = ModelRegistry(settings).list()
    return {
        "runs": sorted(
            f"{run.data.tags.get('job', '?')}:{run.info.run_name}:{run.info.status}" for run in runs
        ),
        "registered": [f"{v.name} v{v.version} {list(v.aliases)}" for v in versions],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".genai/drift_demo"))
    parser.add_argument("--keep", action="store_true", help="Reuse the data directory as is.")
    args = parser.parse_args(argv)
    started = time.monotonic()
    from genai_factory.observability.logging import configure_logging

    configure_logging("warning")
    data_dir = args.data_dir.resolve()
    if data_dir.exists() and not args.keep:
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = _write_config(data_dir)

    from genai_factory.testing.traffic import PRODUCT_QUESTIONS

    product = list(PRODUCT_QUESTIONS[:PHASE_SIZE])
    shifted = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()]

    print("1. yesterday: questions about the product (first start indexes the user guide)")
    before_shift = _coverage(_ask_all(config, product, "product questions"))
    moved = _backdate(config, 24.0)
    print(f"   {before_shift}; {moved} log rows moved 24 h into the past")

    print("2. today: questions about subjects the index does not hold")
    shifted_before = _coverage(_ask_all(config, shifted, "new-topic questions"))
    print(f"   {shifted_before}")

    print("3. genai-factory jobs loop --once")
    report = data_dir / "drift-report.html"
    loop = _cli(config, "jobs", "loop", "--once", "--report", str(report), "--json")
    if loop.returncode != 0:
        print(loop.stdout, loop.stderr, sep="\n")
        return 1
    result = json.loads(loop.stdout)
    for step in result["steps"]:
        print(f"   {step['name']:9} {step['outcome']}")
    print(f"   promoted: {', '.join(result['promoted']) or 'nothing'}; drift report: {report}")

    print("4. after the loop: the same new-topic questions")
    shifted_after = _coverage(_ask_all(config, shifted, "new-topic questions"))
    print(f"   {shifted_after}")

    contents = _mlflow_contents(config)
    print("MLflow holds:")
    for line in contents["runs"]:
        print(f"   run {line}")
    for line in contents["registered"]:
        print(f"   model {line}")
    minutes = (time.monotonic() - started) / 60
    closed = (
        result["drift"]
        and bool(result["promoted"])
        and shifted_after["top_citation_is_an_article"]
        > shifted_before["top_citation_is_an_article"]
    )
    summary = {
        "loop_closed": closed,
        "minutes": round(minutes, 1),
        "before": shifted_before,
        "after": shifted_after,
        "promoted": result["promoted"],
    }
    (data_dir / "demo-summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(
        f"loop closed: {closed} in {minutes:.1f} minutes (summary: {data_dir / 'demo-summary.json'})"
    )
    return 0 if closed else 1


if __name__ == "__main__":
    raise SystemExit(main())
