from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from genai_factory.messages import Chunk, Document
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.loaders import content_hash
from genai_factory.rag.rerank import (
    SentenceMaxSimReranker,
    asked_words,
    commands,
    defines,
    names_row,
    names_setting,
    plain_rows,
    row_keys,
    row_text,
    sentences,
)
from genai_factory.rag.retrieval import Candidate, RetrievalOptions
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.testing.fakes import FakeEmbedder


def _doc(doc_id: str, text: str, title: str = "", **metadata: object) -> Document:
    return Document(
        id=doc_id,
        text=text,
        title=title or doc_id,
        source=f"{doc_id}.md",
        content_hash=content_hash(text),
        metadata=dict(metadata),
    )


def _index(tmp_path: Path, **options: object) -> KnowledgeIndex:
    embedder = FakeEmbedder()
    return KnowledgeIndex(
        EmbeddedVectorStore(tmp_path / "vectors", embedder=embedder.name),
        embedder,
        options=RetrievalOptions(**options),  # type: ignore[arg-type]
        chunk_tokens=48,
        overlap_tokens=8,
        batch_size=2,
    )


async def test_duplicates_by_content_are_skipped(tmp_path: Path) -> None:
    index = _index(tmp_path)
    report = await index.ingest_documents(
        [_doc("a", "Same words here."), _doc("b", "Same words here."), _doc("c", "Other.")]
    )
    assert (report.documents_indexed, report.documents_duplicate) == (2, 1)
    assert report.duplicates == {"b": "a"}
    again = await index.ingest_documents([_doc("d", "Other.")])
    assert again.duplicates == {"d": "c"} and again.documents_indexed == 0
    assert [r.id for r in await index.documents()] == ["a", "c"]


async def test_only_changed_documents_are_re_embedded(tmp_path: Path) -> None:
    index = _index(tmp_path)
    embedder = index.embedder
    assert isinstance(embedder, FakeEmbedder)
    docs = [_doc(f"d{i}", f"Document number {i} about topic {i}.") for i in range(4)]
    await index.ingest_documents(docs)
    calls = embedder.calls
    docs[2] = _doc("d2", "Document two now talks about volcanoes.")
    report = await index.ingest_documents(docs)
    assert (report.documents_indexed, report.documents_unchanged) == (1, 3)
    assert embedder.calls == calls + 1  # one batch: only the changed document's chunk
    assert (await index.search("volcanoes", 1))[0].chunk.document_id == "d2"
    assert await index.count() == 4


async def test_a_failed_commit_leaves_nothing_half_written(tmp_path: Path) -> None:
    index = _index(tmp_path)
    await index.ingest_documents([_doc("keep", "Stable content stays.")])

    async def broken_add(chunks: Sequence[Chunk]) -> None:
        raise OSError("disk full")

    index.keyword.add = broken_add  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        await index.ingest_documents([_doc("new", "Fresh content arrives.")])
    assert [r.id for r in await index.documents()] == ["keep"]
    assert await index.count() == 1  # the vectors written before the failure were removed
    assert await index.search("fresh content arrives") != [] and all(
        h.chunk.document_id == "keep" for h in await index.search("fresh content arrives")
    )


async def test_hybrid_finds_rare_keywords_the_vectors_miss(tmp_path: Path) -> None:
    # The fake embedder hashes words into few buckets, so rare codes collide in vector space;
    # BM25 finds the exact code.
    embedder = FakeEmbedder(dimension=8)
    common = " ".join(f"word{i}" for i in range(30))
    docs = [_doc(f"n{i}", f"{common} filler{i}") for i in range(6)]
    docs.append(_doc("code", f"{common} error E4711 appears"))
    hybrid = KnowledgeIndex(EmbeddedVectorStore(tmp_path / "h"), embedder, chunk_tokens=200)
    keyword = KnowledgeIndex(
        EmbeddedVectorStore(tmp_path / "k"),
        embedder,
        options=RetrievalOptions(mode="keyword"),
        chunk_tokens=200,
    )
    for index in (hybrid, keyword):
        await index.ingest_documents(docs)
    top = (await hybrid.search("E4711", 1))[0]
    assert top.chunk.document_id == "code"
    assert set(top.scores) == {"dense", "keyword", "fused"}
    assert top.score == pytest.approx(top.scores["dense"], abs=1e-5)
    assert (await keyword.search("E4711", 3))[0].chunk.document_id == "code"
    assert len(await keyword.search("E4711", 3)) == 1  # keyword mode: only chunks with the term


@pytest.mark.parametrize("fusion", ["zscore", "rrf"])
async def test_filters_and_per_document_results(tmp_path: Path, fusion: str) -> None:
    index = _index(tmp_path, fusion=fusion)
    long_text = " ".join(f"Pumps move water in sentence {i}." for i in range(30))
    await index.ingest_documents(
        [
            _doc("manual", long_text, lang="en"),
            _doc("guide", "Pumps move water quietly.", lang="de"),
        ]
    )
    chunks = await index.search("pumps move water", 10)
    assert len({h.chunk.document_id for h in chunks}) == 2 and len(chunks) > 2
    per_doc = await index.search_documents("pumps move water", 10)
    assert sorted(h.chunk.document_id for h in per_doc) == ["guide", "manual"]
    german = await index.search("pumps move water", 10, where={"lang": "de"})
    assert {h.chunk.document_id for h in german} == {"guide"}
    either = await index.search("pumps", 10, where={"document_id": ["guide"]})
    assert {h.chunk.document_id for h in either} == {"guide"}


async def test_sentence_reranker_prefers_the_best_matching_sentence(tmp_path: Path) -> None:
    assert sentences("First one. Second one!\nThird line") == [
        "First one.",
        "Second one!",
        "Third line",
    ]
    embedder = FakeEmbedder()
    reranker = SentenceMaxSimReranker(embedder, weight=1.0)
    index = KnowledgeIndex(
        EmbeddedVectorStore(tmp_path / "v"), embedder, reranker=reranker, chunk_tokens=400
    )
    diluted = "Zebras graze. Lions hunt. Rivers flow. Volcanic ash falls quickly. Trees grow."
    focused = "Volcanic ash. Ash clouds. Volcanic smoke. Volcanic rock. Ash layers."
    await index.ingest_documents([_doc("diluted", diluted), _doc("focused", focused)])
    hits = await index.search("volcanic ash falls quickly", 2)
    assert hits[0].chunk.document_id == "diluted"  # one sentence matches the query exactly
    assert hits[0].scores["sentence"] == pytest.approx(1.0, abs=1e-5)
    assert "rerank" in hits[0].scores
    vector = (await embedder.embed(["volcanic ash falls quickly"]))[0]
    assert float(np.dot(vector, vector)) == pytest.approx(1.0, abs=1e-5)


SETTINGS_TABLE = (
    "| setting | environment variable | default | meaning |\n"
    "|---|---|---|---|\n"
    "| `data_dir` | `GENAI_DATA_DIR` | `.genai` | where the index and other state are kept |\n"
    "| `log_level` | `GENAI_LOG_LEVEL` | `info` | `debug`, `info`, `warning` or `error` |"
)


def test_table_rows_are_embedded_with_their_column_names_in_plain_words() -> None:
    assert sentences(f"Settings first.\n{SETTINGS_TABLE}") == [
        "Settings first.",
        # no header row, no rule, no cell that spells the key again (the variable)
        "setting: data dir; default: .genai; meaning: where the index and other state are kept",
        # a row's last cell (of three words or more) alone too: what the row means, as a
        # question puts it ("Where are the index and other state kept?")
        "where the index and other state are kept",
        "setting: log level; default: info; meaning: debug, info, warning or error",
        "debug, info, warning or error",
    ]
    two_cells = "| setting | meaning |\n|---|---|\n| `a` | what a row of two cells means |"
    assert sentences(two_cells) == ["setting: a; meaning: what a row of two cells means"]
    assert sentences(SETTINGS_TABLE.replace("where the index and other state are kept", "state"))[
        0
    ].endswith("meaning: state")
    # rows whose header is in another chunk keep their cells, as before
    assert sentences("| `a.b` | 1 | c |") == ["| `a.b` | 1 | c |"]
    assert row_text(["setting", "default"], ["`x_y`", "`3`"]) == "setting: x y; default: 3"
    # prose that repeats the key's words is meaning, not a spelling of the key
    assert row_text(["setting", "meaning"], ["`max_tokens`", "max tokens per call"]) == (
        "setting: max tokens; meaning: max tokens per call"
    )


def test_a_wrapped_paragraph_is_read_as_whole_sentences() -> None:
    wrapped = (
        "Training on the official train split (4,690\n"
        "images) takes an hour. Then it stops.\n"
        "- A list item starts a new one\n"
        "\n"
        "```bash\n"
        "genai-factory vision train\n"
        "genai-factory vision predict x.png\n"
        "```\n"
        "Prose after the block."
    )
    assert sentences(wrapped) == [
        "Training on the official train split (4,690 images) takes an hour.",
        "Then it stops.",
        "- A list item starts a new one",
        "genai-factory vision train",  # each line of a code block is one (a command)
        "genai-factory vision predict x.png",
        "Prose after the block.",
    ]
    # a chunk that begins inside a code block reads the lines before the closing fence as code
    assert sentences("run --one\nrun --two\n```\nThen prose\nwrapped.") == [
        "run --one",
        "run --two",
        "Then prose wrapped.",
    ]
    # a code block cut at words and folded into one line is read as text
    assert sentences("``` schedule (cron) -> job. Then -> registry") == [
        "``` schedule (cron) -> job.",
        "Then -> registry",
    ]


def test_a_long_sentence_also_gives_its_clauses() -> None:
    first = "peft adds LoRA adapters (rank 8, alpha 16) to the attention projections"
    second = " ".join(["and a plain loop runs the configured steps of every batch"] * 3)
    found = sentences(f"{first}; {second}.")
    assert found == [f"{first}; {second}.", first, f"{second}."]
    short = "a short one; with two clauses."
    assert sentences(short) == [short]  # a short sentence is not cut


def test_a_query_names_a_setting_when_it_holds_every_word_of_its_key() -> None:
    table = "| setting | default |\n|---|---|\n| `llm.resilience.max_backoff_s` | `8` |"
    assert row_keys(table) == [{"max", "backoff"}]  # the last segment, the unit suffix aside
    assert row_keys(SETTINGS_TABLE) == [{"data", "dir"}, {"log", "level"}]
    assert names_setting("What is the default log level?", SETTINGS_TABLE)
    assert names_setting("Which levels of logs are there?", SETTINGS_TABLE)  # crude stems
    assert not names_setting("What level of detail do answers have?", SETTINGS_TABLE)
    assert not names_setting("What is the log level?", "The `log_level` setting, in prose.")


async def test_the_reranker_lifts_a_chunk_holding_the_named_setting(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    lifted = SentenceMaxSimReranker(embedder, weight=0.0, key_lift=1.0)
    plain = SentenceMaxSimReranker(embedder, weight=0.0, key_lift=0.0)
    chunks = [
        Chunk(id=f"d:{i}", document_id="d", text=text, title="d", source="d.md", position=i)
        for i, text in enumerate(["Log lines have a level.", SETTINGS_TABLE])
    ]
    candidates = [Candidate(c, dense=0.5, scores={"fused": 1.0}) for c in chunks]
    vector = (await embedder.embed(["What is the default log level?"]))[0]
    query = "What is the default log level?"
    assert await lifted.rerank(query, vector, candidates) == pytest.approx([1.0, 2.0])
    assert await plain.rerank(query, vector, candidates) == pytest.approx([1.0, 1.0])


GUARDS_TABLE = (
    "| surface | when | default guards |\n|---|---|---|\n"
    "| input | on the question | `injection`, `pii` |\n| output | on the answer | `pii`, `toxicity` |"
)


def test_a_query_names_a_plain_row_and_one_of_its_columns() -> None:
    assert plain_rows(GUARDS_TABLE) == [
        ({"input"}, {"default", "guard"}),
        ({"output"}, {"default", "guard"}),
    ]
    assert names_row("Which output guards run by default?", GUARDS_TABLE)
    # the row alone, or a column alone, is not enough
    assert not names_row("What is the output of the command?", GUARDS_TABLE)
    assert not names_row("Which guards run by default?", GUARDS_TABLE)
    assert not names_row("Which output guards run by default?", "Output guards, in prose.")
    assert plain_rows(SETTINGS_TABLE) == []  # code keys are settings (names_setting)


async def _rerank_texts(lifts: dict[str, float], texts: list[str], query: str) -> list[float]:
    """The reranker's scores (sentence weight 0, fused score 1) of chunks holding ``texts``."""
    embedder = FakeEmbedder()
    reranker = SentenceMaxSimReranker(embedder, weight=0.0, **lifts)
    chunks = [
        Chunk(id=f"d:{i}", document_id="d", text=text, title="d", source="d.md", position=i)
        for i, text in enumerate(texts)
    ]
    candidates = [Candidate(c, dense=0.5, scores={"fused": 1.0}) for c in chunks]
    vector = (await embedder.embed([query]))[0]
    return await reranker.rerank(query, vector, candidates)


async def test_the_reranker_lifts_a_chunk_holding_the_named_plain_row() -> None:
    scores = await _rerank_texts(
        {"key_lift": 0.0, "row_lift": 1.5},
        ["Output guards screen answers.", GUARDS_TABLE],
        "Which output guards run by default?",
    )
    assert scores == pytest.approx([1.0, 2.5])


def test_two_adjacent_query_words_name_a_setting_written_as_one() -> None:
    table = "| setting | default |\n|---|---|\n| `observability.webhook_timeout_s` | `5` |"
    assert {"timeout", "lookup"} <= asked_words("When does the webhook time out after a look up?")
    assert names_setting("How long does the webhook wait before it times out?", table)
    assert not names_setting("How long does the webhook wait?", table)


KEYS_BLOCK = (
    "```bash genai-factory keys create --name a # 60 requests/min "
    "genai-factory keys create --name b --budget-period month genai-factory index list ```"
)


def test_the_commands_of_a_folded_code_block_are_its_subcommands() -> None:
    assert commands(KEYS_BLOCK) == [{"key", "create"}, {"key", "create"}, {"index", "list"}]
    assert commands("```bash make run ```") == []  # one word names no subcommand
    assert commands("```yaml llm: provider: x ```") == []
    assert commands("genai-factory keys create, in prose") == []


async def test_the_reranker_lifts_a_chunk_whose_command_the_query_names() -> None:
    scores = await _rerank_texts(
        {"key_lift": 1.0, "row_lift": 0.0},
        ["Keys have budgets.", KEYS_BLOCK],
        "How do I create an API key with a monthly budget?",
    )
    assert scores == pytest.approx([1.0, 2.0])


def test_a_definition_of_the_asked_thing_is_found() -> None:
    question = "What is GenAI Factory?"
    assert defines(question, "GenAI Factory is a Python framework and service for models.") == 1
    assert defines(question, "Intro.\n\nGenAI Factory reads settings from the environment.") == 0.5
    assert defines(question, "Install GenAI Factory with pip and run it.") == 0
    assert defines("What are adapters?", "Adapters load beside a base model in llama.cpp.") == 0.5
    assert defines("How do I start GenAI Factory?", "GenAI Factory is a framework.") == 0


def test_a_class_named_in_a_table_row_reads_as_its_words() -> None:
    table = "| exception | HTTP status |\n|---|---|\n| `CircuitOpen` | 503 |\n"
    assert row_keys(table) == [{"circuit", "open"}]
    assert names_setting("Which status does a request get when the circuit is open?", table)
