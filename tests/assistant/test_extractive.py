"""The source sentence that answers when the model declines (``assistant.extractive``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.assistant.answer import Mode, StreamDelta, StreamEnd
from genai_factory.assistant.extractive import (
    CHAT_DECLINE,
    CONDITION_LIFT,
    DECLINE,
    DEFAULT_LIFT,
    LEAD_IN_DROP,
    LIST_LIFT,
    NO_LIST_DROP,
    NOUN_LIFT,
    PLACE_LIFT,
    RANK_LIFT,
    SUBJECT_LIFT,
    WEAK_DROP,
    Candidate,
    SentenceExtractor,
    answer_type_bonus,
    candidates,
    chat_decline,
    cited,
    condition_bonus,
    counted_noun,
    cuts_a_name,
    default_bonus,
    is_command_block,
    is_cross_reference,
    is_enumeration,
    joined_words,
    key_share,
    key_words,
    may_be_declining,
    overlap,
    plain_decline,
    plain_words,
    qualifier_bonus,
    quotes_the_question,
    source_priors,
    states_count_of,
    states_figure,
    structure_bonus,
    subject_bonus,
    unsupported_numbers,
)
from genai_factory.assistant.service import AssistantService
from genai_factory.messages import Chunk, ScoredChunk
from genai_factory.rag.index import KnowledgeIndex
from genai_factory.rag.stores import EmbeddedVectorStore
from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

PORT_DOC = (
    "# Getting started\n\n"
    "Install the package first. The service listens on port 8000 by default.\n\n"
    "```bash\ncurl -s localhost:8000/healthz\n```\n"
)


def hit(text: str, score: float = 0.6) -> ScoredChunk:
    chunk = Chunk(id="c", document_id="d", text=text, title="t", source="s.md", position=0)
    return ScoredChunk(chunk=chunk, score=score)


def test_candidates_are_sentences_table_rows_and_code_blocks() -> None:
    # Indexed chunk text has its whitespace folded: a table or a code block is one line.
    text = (
        "First sentence here. Second sentence is here. "
        "| key | default | meaning | | --- | --- | --- | | `service.port` | `8000` | port | "
        "```bash genai-factory keys create --rpm 5 ``` "
        "Last words of the chunk."
    )
    texts = [c.text for c in candidates([hit(text)])]
    assert "First sentence here." in texts and "Second sentence is here." in texts
    # A row under its header is written with the column names; the header row is no candidate.
    assert "key: `service.port`; default: `8000`; meaning: port" in texts
    assert "`genai-factory keys create --rpm 5`" in texts
    assert "Last words of the chunk." in texts
    assert not any("---" in t for t in texts)
    assert "key | default | meaning" not in texts
    # A row of a table whose header is in another chunk keeps its cells.
    rows = [
        c.text for c in candidates([hit("| `service.port` | `8000` | port | | `a.b` | 1 | c |")])
    ]
    assert rows == ["`service.port` | `8000` | port", "`a.b` | 1 | c"]


def test_a_source_that_begins_inside_a_code_block_has_no_rows_before_its_closing_fence() -> None:
    diagram = (
        "  |  output guards on a  |  tool outputs screened by the\n  |  buffer  |  guards)\n```\n"
    )
    texts = [c.text for c in candidates([hit(diagram + "\nThe answer is checked.")])]
    assert texts[-1] == "The answer is checked."
    assert not any("output guards on a" in t and "`" not in t for t in texts)
    # a source that ends inside a tagged block keeps its prose
    tail = "The key is printed once.\n```bash\ngenai-factory keys create --name a"
    assert next(c.text for c in candidates([hit(tail)])) == "The key is printed once."


def test_list_items_are_separate_candidates() -> None:
    text = (
        "It retries 5xx answers, with backoff. Other 4xx answers are never retried. - A 429 "
        "answer's `Retry-After` header is honoured. 2. Every call has a deadline: 120 s."
    )
    texts = [c.text for c in candidates([hit(text)])]
    assert texts == [
        "It retries 5xx answers, with backoff.",
        "Other 4xx answers are never retried.",
        "A 429 answer's `Retry-After` header is honoured.",
        "Every call has a deadline: 120 s.",
    ]


def test_a_sentence_may_start_with_a_figure_or_bold_text() -> None:
    text = "The budget is raised. 402, not 429: do not retry. **Note** the period."
    assert [c.text for c in candidates([hit(text)])] == [
        "The budget is raised.",
        "402, not 429: do not retry.",
        "**Note** the period.",
    ]


def test_candidates_of_unfolded_text() -> None:
    text = "# A long heading\n\nA sentence of prose\nwrapped on two lines.\n\n```yaml\nllm:\n  adapter: none\n```\n"
    texts = [c.text for c in candidates([hit(text)])]
    assert texts == [
        "A long heading",
        "A sentence of prose wrapped on two lines.",
        "`llm: adapter: none`",
    ]


def test_candidates_only_from_what_the_prompt_shows() -> None:
    texts = [c.text for c in candidates([hit("Shown sentence here. " + "x" * 700 + " Hidden.")])]
    assert not any("Hidden" in t for t in texts)


def test_declining_and_its_prefixes() -> None:
    assert may_be_declining("I don't")
    assert may_be_declining(DECLINE)
    assert not may_be_declining("It listens on port 8000")
    assert not may_be_declining("I think the port is 8000")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("120 seconds [1]", True),  # a figure the cited source does not hold
        ("30 seconds [1]", False),
        ("It waits 30 seconds.", False),  # no citation: any source may hold it
        ("It opens after failures [1].", False),  # no figure
        ("8000 [2]", True),  # held by source 1, not by the cited source 2
    ],
)
def test_unsupported_numbers(answer: str, expected: bool) -> None:
    hits = [hit("The breaker waits 30 seconds, port 8000."), hit("Nothing numeric.")]
    assert unsupported_numbers(answer, hits) is expected


def test_cited_puts_the_number_before_the_full_stop() -> None:
    assert cited("The port is 8000.", 2) == "The port is 8000 [2]."
    assert cited("`make run`", 1) == "`make run` [1]"


async def test_the_best_sentence_and_nothing_below_the_threshold() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.6)
    hits = [hit("Pasta boils in salted water."), hit(PORT_DOC)]
    assert await extractor.answer("Which port does the service listen on?", hits) == (
        "The service listens on port 8000 by default [2]."
    )
    assert await extractor.answer("What colour is the sky at dusk?", hits) is None


async def test_a_line_quoting_the_question_is_not_an_answer() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    quoting = 'curl -d \'{"query": "How do I configure a fallback model?"}\''
    hits = [hit(f"```bash\n{quoting}\n```\nList backups under llm fallbacks to configure one.")]
    answer = await extractor.answer("How do I configure a fallback model?", hits)
    assert answer == "List backups under llm fallbacks to configure one [1]."


async def test_a_quoted_similar_question_does_not_make_a_sentence_an_answer() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "Which vector database server can I use instead of the embedded store?"
    hits = [
        hit(
            'Routing: so "Which vector database server can replace the embedded store?" goes '
            "to RAG. Set rag store to qdrant to use a Qdrant vector database server."
        )
    ]
    answer = await extractor.answer(question, hits)
    assert answer == "Set rag store to qdrant to use a Qdrant vector database server [1]."


@pytest.fixture
async def index(tmp_path: Path) -> KnowledgeIndex:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "start.md").write_text(PORT_DOC)
    idx = KnowledgeIndex(EmbeddedVectorStore(tmp_path / "i"), FakeEmbedder())
    await idx.ingest_path(docs)
    return idx


def assistant(index: KnowledgeIndex, reply: str, *, extract: bool = True) -> AssistantService:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.5) if extract else None
    return AssistantService(
        FakeChatModel([reply]), index, system_prompt="sys", min_score=0.1, extractor=extractor
    )


QUESTION = "Which port does the service listen on?"
EXTRACTED = "The service listens on port 8000 by default [1]."


async def test_a_declined_answer_becomes_the_source_sentence(index: KnowledgeIndex) -> None:
    answer = await assistant(index, DECLINE).generate(QUESTION)
    assert answer.route == "rag"
    assert answer.answer == EXTRACTED
    assert answer.citations[0].cited
    assert "extract" in answer.stages_ms


async def test_an_invented_figure_becomes_the_source_sentence(index: KnowledgeIndex) -> None:
    answer = await assistant(index, "9000 [1]").generate(QUESTION)
    assert answer.answer == EXTRACTED


async def test_a_supported_answer_is_kept(index: KnowledgeIndex) -> None:
    answer = await assistant(index, "Port 8000 [1].").generate(QUESTION)
    assert answer.answer == "Port 8000 [1]."
    sentence = "Port 8000: the service listens on it by default [1]."
    answer = await assistant(index, sentence).generate(QUESTION)
    assert answer.answer == sentence
    assert "extract" in answer.stages_ms  # checked against the best-matching sentences
    # The same sentence without its figure says nothing: the source's sentence replaces it.
    vague = "It is the port that the service listens on by default [1]."
    assert (await assistant(index, vague).generate(QUESTION)).answer == EXTRACTED


async def test_a_long_answer_from_a_lesser_sentence_becomes_the_best_one(
    index: KnowledgeIndex,
) -> None:
    copied = "Install the package first, then start the service [1]."
    answer = await assistant(index, copied).generate(QUESTION)
    assert answer.answer == EXTRACTED
    # Streamed, it reached the client as it came; the end event carries the sentence.
    assert await streamed(assistant(index, copied), QUESTION) == (copied, EXTRACTED)


async def test_a_long_answer_is_kept_when_no_sentence_matches_well() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.6)
    hits = [hit("Pasta boils in salted water.")]
    question = "What colour is the sky at dusk?"
    reply = "The sky at dusk is orange and red [1]."
    assert await extractor.unsupported_answer(question, reply, hits) is None


async def test_a_short_phrase_from_no_matching_sentence_becomes_the_sentence(
    index: KnowledgeIndex,
) -> None:
    answer = await assistant(index, "Install the package [1]").generate(QUESTION)
    assert answer.answer == EXTRACTED
    assert "extract" in answer.stages_ms
    # A phrase of a sentence that matches is kept, a word inside another word is not a match,
    # and a phrase of the question's own words answers nothing.
    kept = "Port 8000 by default [1]"
    assert (await assistant(index, kept).generate(QUESTION)).answer == kept
    assert (await assistant(index, "It listens [1]").generate(QUESTION)).answer == EXTRACTED
    assert (await assistant(index, "ten [1]").generate(QUESTION)).answer == EXTRACTED


async def test_a_short_answer_is_checked_only_against_good_matches() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.6)
    hits = [hit("Pasta boils in salted water."), hit(PORT_DOC)]
    question = "What colour is the sky at dusk?"
    assert await extractor.unsupported_short_answer(question, "Orange [1]", hits) is None
    port = "Which port does the service listen on?"
    assert await extractor.unsupported_short_answer(port, "8000 [2]", hits) is None
    assert await extractor.unsupported_short_answer(port, "salted water [1]", hits) == (
        "The service listens on port 8000 by default [2]."
    )
    long_answer = "The service listens on a port that the guide names [2]."
    assert await extractor.unsupported_short_answer(port, long_answer, hits) is None


def test_a_duration_question_prefers_a_time() -> None:
    question = "How long does an open breaker wait before a trial call?"
    timed = "Calls fail at once for `cooldown_s` seconds (default 30)."
    untimed = "Then one trial call is let through."
    assert answer_type_bonus(question, timed) > answer_type_bonus(question, untimed)


async def test_without_the_extractor_the_decline_stands(index: KnowledgeIndex) -> None:
    answer = await assistant(index, DECLINE, extract=False).generate(QUESTION)
    assert answer.answer == DECLINE


async def test_a_decline_without_a_matching_sentence_stands(index: KnowledgeIndex) -> None:
    answer = await assistant(index, DECLINE).generate(QUESTION, mode="rag")
    pasta = "Why is pasta boiled in salted water?"
    unrelated = await assistant(index, DECLINE).generate(pasta, mode="rag")
    assert answer.answer == EXTRACTED
    assert unrelated.answer == DECLINE
    # Asked in auto mode, a question no source matches goes to plain chat, which has no sources.
    chatted = await assistant(index, DECLINE).generate(pasta)
    assert (chatted.route, chatted.answer) == ("chat", CHAT_DECLINE)


async def streamed(service: AssistantService, question: str, mode: Mode = "rag") -> tuple[str, str]:
    text, final = "", ""
    async for event in service.stream(question, mode=mode):
        if isinstance(event, StreamDelta):
            text += event.text
        elif isinstance(event, StreamEnd):
            final = event.answer.answer
    return text, final


async def test_a_streamed_decline_is_held_back_and_replaced(index: KnowledgeIndex) -> None:
    text, final = await streamed(assistant(index, DECLINE), QUESTION)
    assert text == final == EXTRACTED  # the decline itself never reached the client


async def test_a_streamed_answer_passes_through(index: KnowledgeIndex) -> None:
    text, final = await streamed(assistant(index, "It is port 8000 [1]."), QUESTION)
    assert text == final == "It is port 8000 [1]."
    # a loop has streamed as it came; the end event carries it once
    looping = "It is port 8000 [1]. " * 4
    assert (await streamed(assistant(index, looping), QUESTION))[1] == "It is port 8000 [1]."
    text, final = await streamed(assistant(index, "Port 8000 [1]"), QUESTION)
    assert text == final == "Port 8000 [1]"  # a short phrase the best sentence holds
    # A decline cut short, or a short phrase from elsewhere, becomes the sentence.
    assert await streamed(assistant(index, "I don't"), QUESTION) == (EXTRACTED, EXTRACTED)
    assert await streamed(assistant(index, "Install it [1]"), QUESTION) == (EXTRACTED, EXTRACTED)


async def test_a_short_reply_must_come_from_the_best_match_not_a_lesser_one() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "How many model decisions may an agent run make?"
    hits = [
        hit("An agent run makes at most 5 model decisions."),
        hit("Each tool gets one call per decision."),
    ]
    assert await extractor.unsupported_short_answer(question, "5 [1]", hits) is None
    assert await extractor.unsupported_short_answer(question, "one [2]", hits) == (
        "An agent run makes at most 5 model decisions [1]."
    )


async def test_a_short_reply_is_judged_by_the_words_it_adds_to_the_question() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "How many tokens may each model call of an agent write?"
    best = "Each model call of an agent writes at most 160 tokens."
    hits = [hit(best), hit("At the step limit, one more model call may only give the answer.")]
    # "model call" is the question's; "one more" comes from the other sentence.
    assert await extractor.unsupported_short_answer(question, "one more model call [1]", hits) == (
        "Each model call of an agent writes at most 160 tokens [1]."
    )
    assert await extractor.unsupported_short_answer(question, "160 tokens [1]", hits) is None
    assert await extractor.unsupported_short_answer(question, "at most 160 [1]", hits) is None


async def test_a_short_reply_written_word_for_word_only_in_a_lesser_sentence_is_replaced() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "Which retrieval modes can I choose from?"
    row_text = "| setting | meaning |\n|---|---|\n| `rag.retrieval.mode` | `hybrid`, `dense` or `keyword` |"
    routes = "A request chooses a route with `mode`:\n\n- `rag`: retrieve.\n- `chat`: do not."
    hits = [hit(row_text), hit(routes)]
    best = await extractor.best(question, hits)
    assert best is not None and "hybrid" in best[0].text
    # both words are in the row's setting name, but only the routes sentence writes "mode: rag"
    replaced = await extractor.unsupported_short_answer(question, "mode: `rag` [2]", hits)
    assert replaced is not None and "hybrid" in replaced
    assert await extractor.unsupported_short_answer(question, "`hybrid` [1]", hits) is None


async def test_a_short_reply_of_the_questions_own_words_becomes_the_sentence() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "What is the largest document the documents API accepts?"
    hits = [hit("The largest document the documents API accepts is 10 MiB.")]
    expected = "The largest document the documents API accepts is 10 MiB [1]."
    assert await extractor.unsupported_short_answer(question, "The document [1]", hits) == expected
    assert await extractor.unsupported_short_answer(question, "10 MiB [1]", hits) is None


async def test_a_copied_clause_without_the_sentences_figure_becomes_the_sentence() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    sentence = (
        "When a key's budget is used up, the request gets 402 budget_exceeded; the key's "
        "requests are refused until the period resets."
    )
    hits = [hit(sentence)]
    question = "What does a request get when its key's budget is used up?"
    clause = "The key's requests are refused until the period resets [1]."
    assert await extractor.unsupported_answer(question, clause, hits) == cited(sentence, 1)
    with_figure = "The request gets 402 budget_exceeded when the budget is used up [1]."
    assert await extractor.unsupported_answer(question, with_figure, hits) is None


async def test_a_longer_reply_with_only_some_of_the_sentences_figures_becomes_the_sentence() -> (
    None
):
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    sentence = "A session stores at most 40 messages and 128 KiB of them, as UTF-8 JSON."
    hits = [hit(sentence)]
    question = "How many messages does a session store at most?"
    assert await extractor.unsupported_answer(question, "128 KiB, their UTF-8 JSON [1].", hits) == (
        cited(sentence, 1)
    )
    both = "At most 40 messages and 128 KiB of them [1]."
    assert await extractor.unsupported_answer(question, both, hits) is None


async def test_a_longer_reply_naming_only_a_rows_setting_becomes_the_row() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    row = (
        "| `gateway.redis_prefix` | `GENAI_GATEWAY__REDIS_PREFIX` | `gf:` | prefix of Redis keys |"
    )
    hits = [hit(f"| setting | variable | default | meaning |\n|---|---|---|---|\n{row}")]
    question = "What is the default prefix of the gateway's Redis keys?"
    reply = "`gateway.redis_prefix` [1]. mean (in process) [1]"
    assert (await extractor.unsupported_answer(question, reply, hits) or "").startswith(
        "setting: `gateway.redis_prefix`;"
    )
    assert await extractor.unsupported_answer(
        question, "The default prefix is `gf:` [1].", hits
    ) is (None)


async def test_a_reply_naming_a_settings_row_key_becomes_the_row() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    row = (
        "| `gateway.redis_prefix` | `GENAI_GATEWAY__REDIS_PREFIX` | `gf:` | prefix of Redis keys |"
    )
    hits = [hit(f"| setting | variable | default | meaning |\n|---|---|---|---|\n{row}")]
    expected = (
        "setting: `gateway.redis_prefix`; variable: `GENAI_GATEWAY__REDIS_PREFIX`; "
        "default: `gf:`; meaning: prefix of Redis keys [1]"
    )
    question = "What is the default prefix of the gateway's Redis keys?"
    assert await extractor.unsupported_short_answer(
        question, "`gateway.redis_prefix` [1]", hits
    ) == (expected)
    assert await extractor.unsupported_short_answer(question, "`gf:` [1]", hits) is None
    # Asked which setting it is, the setting's name is the answer.
    which = "Which setting holds the prefix of the gateway's Redis keys?"
    assert (
        await extractor.unsupported_short_answer(which, "`gateway.redis_prefix` [1]", hits) is None
    )


async def test_a_figure_from_a_sentence_with_several_is_shown_with_its_sentence() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    sentence = "A new key may make 60 requests per minute and use 20000 tokens per minute."
    hits = [hit(sentence)]
    question = "What is the requests per minute limit of a new key?"
    expected = "A new key may make 60 requests per minute and use 20000 tokens per minute [1]."
    assert await extractor.unsupported_short_answer(question, "20000 [1]", hits) == expected
    single = [hit("A new key may make 60 requests per minute.")]
    assert await extractor.unsupported_short_answer(question, "60 [1]", single) is None


async def test_the_first_sources_are_preferred_on_a_tie() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    same = "The service listens on port 8000 by default."
    ranked = await extractor.ranked("Which port does the service listen on?", [hit(same)] * 3)
    assert [c.source for c, _ in ranked] == [1, 2, 3]
    assert ranked[0][1] > ranked[1][1] > ranked[2][1]


async def test_a_source_the_reranker_scored_far_below_the_first_is_a_weak_one() -> None:
    same = "The service listens on port 8000 by default."

    def reranked(*scores: float) -> list[ScoredChunk]:
        return [ScoredChunk(chunk=hit(same).chunk, score=0.6, scores={"rerank": s}) for s in scores]

    assert source_priors([hit(same)] * 3) == pytest.approx([RANK_LIFT, RANK_LIFT / 2, 0.0])
    # a gap of up to 1.5 deviations costs nothing; 2.5 and more the whole drop
    assert source_priors(reranked(4.5, 3.8, 3.0)) == pytest.approx([RANK_LIFT, RANK_LIFT / 2, 0.0])
    assert source_priors(reranked(4.5, 3.8, 2.0)) == pytest.approx(
        [RANK_LIFT, RANK_LIFT / 2, -WEAK_DROP]
    )
    assert source_priors(reranked(4.0, 2.0, 1.0))[1] == pytest.approx(RANK_LIFT / 2 - WEAK_DROP / 2)


async def test_a_weak_sources_better_worded_sentence_loses_to_the_first_sources() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    question = "How long is the longest wait between two retries?"
    answer = "The wait between two retries is 8 seconds at most."
    near = "The longest wait between two retries of a benchmark run is 18 minutes."
    hits = [
        ScoredChunk(chunk=hit(answer).chunk, score=0.6, scores={"rerank": 4.5}),
        ScoredChunk(chunk=hit("Unrelated words.").chunk, score=0.5, scores={"rerank": 3.8}),
        ScoredChunk(chunk=hit(near).chunk, score=0.4, scores={"rerank": 1.9}),
    ]
    assert (await extractor.ranked(question, hits))[0][0].text == answer
    # without the gap the closer wording of the third source wins
    for h in hits:
        h.scores.clear()
    assert (await extractor.ranked(question, hits))[0][0].text == near


async def test_a_reply_echoing_a_named_sections_title_becomes_the_sections_opening() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=5.0)  # no sentence is good enough
    section = Chunk(
        id="c",
        document_id="d",
        text="```bash\ngenai-factory ingest path/to/docs\n```\n\nMarkdown files are indexed.",
        title="Getting started",
        source="s.md",
        position=0,
        heading="Getting started > Add your own documents",
    )
    other = hit("Unrelated words about ports.")
    hits = [other, ScoredChunk(chunk=section, score=0.3)]
    question = "How do I add my own documents?"
    expected = "`genai-factory ingest path/to/docs` Markdown files are indexed [2]."
    assert await extractor.unsupported_short_answer(
        question, "Add your own documents [2].", hits
    ) == (expected)
    assert await extractor.answer(question, hits) == expected  # the model declined
    # A section the question does not name gives nothing.
    assert await extractor.answer("How do I delete a key?", hits) is None
    assert await extractor.unsupported_short_answer(question, "Ports [1].", hits) is None


def row(text: str, *cells: str) -> Candidate:
    return Candidate(1, text, cells)


def test_a_row_whose_key_the_question_names_is_lifted() -> None:
    fusion = row("setting: `rag.retrieval.fusion`", "`rag.retrieval.fusion`", "`zscore`")
    weights = row(
        "setting: `rag.retrieval.dense_weight`", "`rag.retrieval.dense_weight` / `w`", "`0.5`"
    )
    question = "Which fusion method does hybrid retrieval use by default?"
    assert key_words(fusion.cells[0]) == {"fusion"}
    assert key_share(question, fusion) == 1.0
    assert key_share(question, weights) == 0.0
    assert structure_bonus(question, fusion, fusion.text) > structure_bonus(
        question, weights, weights.text
    )
    # "longest" names a `max_...` setting; a unit suffix is no word of the key
    backoff = row("x", "`llm.resilience.max_backoff_s`", "`8`")
    assert key_words(backoff.cells[0]) == {"max", "backoff"}
    assert key_share("What is the longest backoff?", backoff) == 1.0
    assert key_share("What is the backoff?", backoff) == 0.5
    assert key_share(question, row("A sentence, no row.")) == 0.0


def test_a_question_names_a_settings_terms_in_plain_words() -> None:
    # "first wait" names `initial_backoff_s`, "longest wait" `max_backoff_s`
    initial = row("x", "`llm.resilience.initial_backoff_s`", "`0.5`")
    longest = row("x", "`llm.resilience.max_backoff_s`", "`8`")
    first = "How long is the wait after the first failed attempt?"
    assert key_share(first, initial) == 1.0
    assert key_share(first, longest) == 0.5
    assert key_share("How long is the longest delay between retries?", longest) == 1.0
    assert key_share("How long is the longest delay between retries?", initial) == 0.5


def test_a_how_many_question_wants_a_figure_next_to_its_noun() -> None:
    question = "How many index versions are kept after a full ingest?"
    assert counted_noun(question) == "version"
    assert counted_noun("How many sources are retrieved per question?") == "sourc"
    assert counted_noun("How many times is a call attempted?") is None  # how often
    assert counted_noun("Which port is used?") is None
    counted = "`rag.keep_versions` (default 3) ready versions are kept."
    elsewhere = "Version 3 of the index is built from scratch."
    assert states_count_of("version", counted)
    assert not states_count_of("version", elsewhere)
    bonus = structure_bonus(question, row(counted), counted)
    assert bonus > structure_bonus(question, row(elsewhere), elsewhere)
    # a candidate without any figure cannot say how many ("the serving one" is no figure)
    figureless = "Every full ingest builds a new index version beside the serving one."
    assert not states_figure(figureless)
    assert states_figure("It keeps three versions.")
    assert structure_bonus(question, row(figureless), figureless) < 0


def test_without_is_found_where_a_candidate_says_something_is_absent() -> None:
    question = "What status code does a request without an API key get?"
    absent = "status: 401; when: no key, a malformed key, an unknown or a revoked key"
    present = absent.replace("no key", "an old key")
    assert overlap(question, absent) > overlap(question, present)
    assert overlap("Which files are read without a parser?", "Every file is read.") == 0.5


def test_a_count_written_in_words_is_a_figure() -> None:
    question = "In how many languages are the injection guard's rules written?"
    words = "Hand-written rules for known attack families, in twelve languages."
    threshold = "The shipped injection guard (threshold 0.95) flags 3 of the 454 paragraphs."
    assert counted_noun(question) == "languag"
    assert states_count_of("languag", words)
    assert not states_count_of("languag", threshold)
    assert answer_type_bonus(question, words) == answer_type_bonus(question, threshold) > 0
    assert structure_bonus(question, row(words), words) > structure_bonus(
        question, row(threshold), threshold
    )


def test_which_things_wants_an_enumeration_and_where_a_path() -> None:
    listing = "Supported files are Markdown (`.md`), plain text (`.txt`), HTML and PDF (`.pdf`)."
    prose = "Hidden files and directories are skipped; a broken file is reported, the others kept."
    assert is_enumeration(listing) and not is_enumeration(prose)
    assert not is_enumeration("setting: `a`; environment variable: `A`; default: `1`; meaning: b")
    question = "Which file formats does ingest index?"
    # an enumeration naming what the question lists ("files") gets more
    assert structure_bonus(question, row(listing), listing) == pytest.approx(LIST_LIFT + NOUN_LIFT)
    unnamed = "It reads Markdown (`.md`), plain text (`.txt`), HTML and PDF (`.pdf`)."
    assert structure_bonus(question, row(unnamed), unnamed) == pytest.approx(LIST_LIFT)
    # a candidate that lists nothing cannot name several things
    assert structure_bonus(question, row(prose), prose) == pytest.approx(-NO_LIST_DROP)
    assert structure_bonus("What does ingest do?", row(listing), listing) == 0.0
    # a verb with its object is no plural noun: one thing is asked for
    for single in (
        "Which command creates an API key?",
        "Which endpoint serves Prometheus data?",
        "What happens when the model backend is down?",
        "What happens to a chunk that a guard flags?",
    ):
        assert structure_bonus(single, row(prose), prose) == 0.0, single
    assert structure_bonus("Which address does it bind to?", row(listing), listing) == 0.0
    where = "Where does the service keep its state?"
    for path in ("State is kept in `.genai`.", "It keeps its data in /data.", "`<data_dir>/index`"):
        assert structure_bonus(where, row(path), path) == pytest.approx(PLACE_LIFT), path
    assert structure_bonus(where, row("State is kept on disk."), "State is kept on disk.") == 0.0


def test_a_list_may_start_after_a_colon_and_ends_at_a_new_clause() -> None:
    guards = (
        "surface: input; when: before routing, on the question; default guards (route "
        "`default`): `injection` (block), `toxicity` (warn), `pii` (redact)"
    )
    assert is_enumeration(guards)
    # the short clause before a semicolon does not extend the list before it
    refusals = (
        "Uploads over the limit get 413, unsupported types 415, empty or unreadable files 422; "
    )
    assert not is_enumeration(refusals + "none of them writes anything.")


def test_retries_and_retry_share_a_stem() -> None:
    assert overlap("How often are retries made?", "A `Retry-After` header is honoured.") > 0


def test_candidates_are_embedded_in_plain_words() -> None:
    row_text = "setting: `log_level`; default: `info`; meaning: **the** level"
    assert plain_words(row_text) == "setting: log level; default: info; meaning: the level"


def test_adjacent_question_words_name_a_key_written_as_one() -> None:
    assert "timeout" in joined_words("When does it time out?")
    row = Candidate(1, "setting: webhook timeout s; default: 5", ("`webhook_timeout_s`", "`5`"))
    assert key_share("How long does the webhook wait before it times out?", row) == 1.0
    assert key_share("How long does the webhook wait?", row) == 0.5


def test_a_status_code_question_wants_a_number_standing_alone() -> None:
    question = "What status code do I get when I read a session of another key?"
    assert answer_type_bonus(question, "Another key that names it gets 403 `permission_denied`.")
    assert answer_type_bonus(question, "`GET /v1/sessions/{id}` returns its messages.") == 0.0
    assert answer_type_bonus("Which exit code means drift?", "exit `0` no drift, `3` drift") > 0


def test_a_default_stated_for_one_case_fits_the_question_naming_that_case() -> None:
    question = "Which action format does the embedded model use by default?"
    named = "`json_staged` (the default for the embedded llama.cpp model): two calls per step."
    other = "`native` (the default for `openai_compatible` models): function specs."
    assert qualifier_bonus(question, named) > 0 > qualifier_bonus(question, other)
    # a question about no default, or a default stated for no case, is left alone
    assert qualifier_bonus("Which action format is the fastest?", other) == 0.0
    assert qualifier_bonus(question, "Port 8000 is the default.") == 0.0


def test_a_how_do_i_question_prefers_a_code_block_of_commands() -> None:
    question = "How do I go back to the previous index version?"
    block = "`genai-factory index list genai-factory index rollback # back to the version before`"
    sentence = "The serving version switches at once: a rename of `<data_dir>/index/ACTIVE`."
    assert is_command_block(block) and not is_command_block(sentence)
    assert not is_command_block("`llm.fallbacks`")
    assert answer_type_bonus(question, block) > answer_type_bonus(question, sentence) > 0


def test_a_which_question_may_name_its_plural_noun_after_two_words() -> None:
    question = "Which HTTP status codes does a model call retry?"
    listing = "It retries 408, 409, 429 and 5xx answers, timeouts and connection errors."
    row_text = (
        "exception: `RateLimited`; http status: 503; meaning: the provider kept answering 429"
    )
    assert structure_bonus(question, row(listing), listing) == pytest.approx(LIST_LIFT)
    assert structure_bonus(question, row(row_text), row_text) == pytest.approx(-NO_LIST_DROP)
    # a verb after the noun, or a preposition among the words, asks for no list
    for single in (
        "Which environment variable sets how many sources are retrieved?",
        "What share of answers should arrive within 10 seconds?",
    ):
        assert structure_bonus(single, row(row_text), row_text) == 0.0, single


def test_a_by_default_question_prefers_a_candidate_stating_the_default() -> None:
    question = "Where does MLflow store its runs by default?"
    stated = "By default MLflow is embedded: `sqlite:///<data_dir>/mlflow.db`."
    example = "Look at the runs with `mlflow ui --backend-store-uri sqlite:///data/mlflow.db`."
    assert default_bonus(question, stated) == pytest.approx(DEFAULT_LIFT)
    assert default_bonus(question, example) == 0.0
    assert default_bonus(question, "`--unanswerable-share` (default 0.25) caps it") > 0
    assert default_bonus("Where does MLflow store its runs?", stated) == 0.0


def test_a_when_question_prefers_a_candidate_stating_a_condition() -> None:
    question = "When does the service turn authentication off by itself?"
    condition = "on, except when the service binds to a loopback address and no key exists: off"
    assert condition_bonus(question, condition) == pytest.approx(CONDITION_LIFT)
    assert condition_bonus(question, "Create a key and restart the service, and auth is on.") == 0
    # "when" inside a question frames it; it does not ask for a condition
    assert condition_bonus("What status code do I get when a key is over?", condition) == 0.0


def test_a_share_question_prefers_a_percentage_or_a_fraction() -> None:
    question = "What share of answers should arrive within 10 seconds?"
    objective = "Objectives: 95 % of answers within 10 s, over 30 days."
    rule = "`genai:answers_slow:ratio_rate{5m}` | share of answers slower than 10 s"
    assert answer_type_bonus(question, objective) > answer_type_bonus(question, rule)
    assert answer_type_bonus("At what share is an alert sent?", "default `0.8` [1]") > 0
    assert answer_type_bonus("What share of traces is kept?", "all of them [1]") == 0.0
    assert answer_type_bonus("What is kept?", objective) == 0.0


def test_adjacent_question_words_written_as_one_count_as_shared_words() -> None:
    question = "How long does the webhook wait before it times out?"
    row_text = "setting: `webhook_timeout_s`; default: `5`"
    # long, webhook, wait, before, times, out: "times out" is the row's "timeout"
    assert overlap(question, row_text) == pytest.approx(3 / 6)
    assert overlap("How long does the webhook wait?", row_text) == pytest.approx(1 / 3)


def test_a_minimum_or_maximum_wants_a_figure() -> None:
    question = "What is the minimum retrieval score for answering in auto mode?"
    assert answer_type_bonus(question, "default: `0.25`; meaning: below this, plain chat") > 0
    assert answer_type_bonus(question, "RAG answers when a source scores at least it") == 0.0


async def test_a_longer_reply_holding_a_small_part_of_its_sentence_becomes_the_sentence() -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.1)
    sentence = (
        "Each request starts its own trace: a traceparent header sent by the client is recorded "
        "as a span link, not as a parent, so the trace id always names exactly one request."
    )
    hits = [hit(sentence)]
    question = "What happens to a traceparent header sent by the client?"
    clause = "The trace id always names exactly one request [1]."
    assert await extractor.unsupported_answer(question, clause, hits) == cited(sentence, 1)
    most = "A traceparent header sent by the client is recorded as a span link, not a parent [1]."
    assert await extractor.unsupported_answer(question, most, hits) is None
    # a short part that names what the question asks about answers it
    part = "The traceparent header is recorded as a span link [1]."
    assert await extractor.unsupported_answer(question, part, hits) is None


def test_a_decline_in_other_words_becomes_the_plain_decline() -> None:
    assert plain_decline("I don't know: the sources say.") == DECLINE
    assert plain_decline("  I do not know [1]") == DECLINE
    assert plain_decline("i dont know.") == DECLINE
    assert (
        plain_decline("Unknown keys are rejected with 400 [1].")
        == "Unknown keys are rejected with 400 [1]."
    )
    assert plain_decline("I know the port: 8000 [1].") == "I know the port: 8000 [1]."


async def test_a_garbled_decline_with_nothing_to_extract_reads_as_the_decline(
    index: KnowledgeIndex,
) -> None:
    garbled = "I don't know: the sources say."
    question = "What colour is the sky at dusk?"
    answer = await assistant(index, garbled).generate(question, mode="rag")
    assert answer.route == "rag"
    assert answer.answer == DECLINE
    assert await streamed(assistant(index, garbled), question) == (DECLINE, DECLINE)
    # Without an extractor the reply is left as the model wrote it.
    kept = await assistant(index, garbled, extract=False).generate(question, mode="rag")
    assert kept.answer == garbled


def test_a_decline_that_speaks_of_sources_reads_plainly_without_sources() -> None:
    assert chat_decline("I don't know: the sources say.") == CHAT_DECLINE
    assert chat_decline(DECLINE) == CHAT_DECLINE
    assert chat_decline("I don't know what that is.") == "I don't know what that is."
    assert chat_decline("The sources are the pages [1].") == "The sources are the pages [1]."


async def test_the_chat_route_never_speaks_of_sources_it_does_not_have(
    index: KnowledgeIndex,
) -> None:
    garbled = "I don't know: the sources say."
    question = "What colour is the sky at dusk?"
    answer = await assistant(index, garbled).generate(question, mode="chat")
    assert answer.route == "chat"
    assert answer.answer == CHAT_DECLINE
    assert await streamed(assistant(index, garbled), question, "chat") == (
        CHAT_DECLINE,
        CHAT_DECLINE,
    )
    # Any other reply streams as it came.
    reply = "The sky at dusk is orange."
    assert await streamed(assistant(index, reply), question, "chat") == (reply, reply)
    unsure = "I don't know what colour it is."
    assert await streamed(assistant(index, unsure), question, "chat") == (unsure, unsure)


async def test_auto_mode_takes_rag_when_one_sentence_answers_although_chunks_score_low(
    index: KnowledgeIndex,
) -> None:
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.5)
    strict = AssistantService(  # no chunk reaches min_score 0.99
        FakeChatModel(["Port 8000 [1]."]),
        index,
        system_prompt="sys",
        min_score=0.99,
        extractor=extractor,
    )
    answer = await strict.generate(QUESTION)
    assert (answer.route, answer.answer) == ("rag", "Port 8000 [1].")
    unrelated = await strict.generate("Why is pasta boiled in salted water?")
    assert unrelated.route == "chat"
    without = AssistantService(
        FakeChatModel(["Port 8000."]), index, system_prompt="sys", min_score=0.99
    )
    assert (await without.generate(QUESTION)).route == "chat"


async def test_a_reply_caught_in_a_loop_is_kept_once(index: KnowledgeIndex) -> None:
    looping = "I don't know a joke: " * 12 + "I don'"
    answer = await assistant(index, looping).generate("Tell me a joke.", mode="chat")
    assert answer.answer == "I don't know a joke."
    # streamed, a reply that starts as a decline is held back: the loop never reaches the client
    text, final = await streamed(assistant(index, looping), "Tell me a joke.", "chat")
    assert text == final == "I don't know a joke."


def test_a_sentence_that_only_points_elsewhere_is_no_candidate() -> None:
    assert is_cross_reference("See [Knowledge base](knowledge-base.md).")
    assert is_cross_reference("More in [Gateway](gateway.md#keys) below.")
    assert not is_cross_reference("Ingest a folder with `ingest` ([Knowledge base](kb.md)).")
    assert not is_cross_reference("See the table below.")  # no link: it may say more
    texts = [c.text for c in candidates([hit("Add documents with `ingest`. See [KB](kb.md).")])]
    assert texts == ["Add documents with `ingest`."]


def test_inflections_of_one_word_share_a_stem() -> None:
    question = "Which embedding model does the assistant use?"
    assert overlap(question, "The default embedder is all-MiniLM-L6-v2.") > 0
    assert overlap("Which settings matter?", "This setting matters.") == 1.0
    # a short word ending in "er" keeps it: "answer" is not "answ"
    assert overlap("Which answers?", "an answer") == 1.0


def test_a_version_question_wants_a_figure() -> None:
    question = "Which Python version do I need?"
    assert answer_type_bonus(question, "Python 3.11 and pip on Linux or macOS.") > 0
    assert answer_type_bonus(question, "A C compiler and CMake are needed once.") == 0


def test_a_term_is_found_under_the_name_the_guide_gives_it() -> None:
    question = "Which significance level does the drift check use?"
    stated = "A test drifted when its p-value is below `mlops.drift.alpha` (0.01)."
    unnamed = "A test drifted when its p-value is below the bound (0.01)."
    assert overlap(question, stated) > overlap(question, unnamed)


@pytest.mark.parametrize(
    ("question", "text", "lifted"),
    [
        ("What does the drift job compare?", "`drift` compares two windows.", True),
        ("What does the drift job compare?", "The drift job found a change.", False),
        ("What does the circuit breaker do?", "After 5 failures the breaker opens.", True),
        # a noun before a plural noun is a modifier, not a subject
        ("What does the circuit breaker do?", "Breaker states appear in the log.", False),
        ("What is GenAI Factory?", "GenAI Factory turns models into API products.", True),
        ("What is GenAI Factory?", "Install GenAI Factory with pip.", False),
        ("What is GenAI Factory?", "`genai_factory.cli` | the command", False),
        ("How do I start it?", "The breaker opens.", False),
    ],
)
def test_a_sentence_saying_what_the_asked_thing_does_is_lifted(
    question: str, text: str, *, lifted: bool
) -> None:
    assert subject_bonus(question, text) == (SUBJECT_LIFT if lifted else 0.0)


def test_a_lead_in_to_a_code_block_states_nothing() -> None:
    question = "Which embedding model does the assistant use?"
    lead_in = Candidate(1, "To use an OpenAI-compatible embeddings endpoint:")
    stated = Candidate(1, "The default embedder is all-MiniLM-L6-v2.")
    assert structure_bonus(question, lead_in, lead_in.text) == -LEAD_IN_DROP
    assert structure_bonus(question, stated, stated.text) == 0.0


def test_a_status_question_wants_an_http_status_not_any_small_number() -> None:
    question = "What status does the upload of an empty document get?"
    assert answer_type_bonus(question, "Empty or unreadable files get 422.") > 0
    assert answer_type_bonus(question, "After 5 failures (default 5) the breaker opens.") == 0
    # an exit code may be one digit
    assert answer_type_bonus("Which exit code means drift?", "Exit 3 means drift.") > 0


async def test_a_sentence_saying_it_is_quoted_with_the_sentence_it_refers_to() -> None:
    text = '`200 {"status": "ok"}` as soon as the process serves HTTP. Use it as a liveness probe.'
    found = candidates([hit(text)])
    assert [c.text for c in found] == [
        '`200 {"status": "ok"}` as soon as the process serves HTTP.',
        "Use it as a liveness probe.",
    ]
    assert found[1].shown == text and found[0].shown == found[0].text
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.0)
    answer = await extractor.answer("What is a liveness probe?", [hit(text)])
    assert answer == f"{text[:-1]} [1]."


async def test_an_answer_that_cuts_a_name_short_becomes_the_sentence() -> None:
    source = "All errors derive from `genai_factory.exceptions.GenAIFactoryError` in the package."
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.0)
    question = "Which exception do all errors derive from?"
    cut = "All errors derive from `genai_factory.exceptions` in the package [1]."
    assert await extractor.unsupported_answer(question, cut, [hit(source)]) == cited(source, 1)
    whole = "All errors derive from `genai_factory.exceptions.GenAIFactoryError` [1]."
    assert await extractor.unsupported_answer(question, whole, [hit(source)]) is None
    assert cuts_a_name("see `a.b`", "see `a.b.c`") and not cuts_a_name("see `a.b`", "see `a.b`")


async def test_a_sentence_about_a_quoted_example_of_the_question_is_no_answer() -> None:
    question = "How do I add my own documents to the knowledge base?"
    about = 'A question naming a section ("How do I add my own documents?") gets its opening.'
    assert quotes_the_question(question, about)
    assert not quotes_the_question(question, 'Ask "Which port?" to see the port.')
    extractor = SentenceExtractor(FakeEmbedder(), min_score=0.0)
    answer = await extractor.answer(question, [hit(f"{about} Add documents with `ingest`.")])
    assert answer == "Add documents with `ingest` [1]."


def test_each_command_of_a_block_is_a_candidate_too() -> None:
    block = (
        "```bash\ngenai-factory keys create --name my-app   # 60 requests/min\n"
        "genai-factory keys revoke 3f9a0c1b2d4e   # the key id, or the whole key\n```\n"
    )
    texts = [c.text for c in candidates([hit(block)])]
    assert texts[1:] == [
        "`genai-factory keys create --name my-app # 60 requests/min`",
        "`genai-factory keys revoke 3f9a0c1b2d4e # the key id, or the whole key`",
    ]
    assert all(is_command_block(t) for t in texts)
    # one command, or a block that does not start with a program's name: the block alone
    assert len(candidates([hit("```bash\ngenai-factory serve --port 8000\n```")])) == 1
    assert len(candidates([hit("```yaml\nrag:\n  top_k: 3\nrag: x\n```")])) == 1
