"""Plain questions about the bundled user guide, asked the way a new user asks them after ``make run``.

Starts the service in process on its embedded defaults (the bundled model, the shipped adapter
unless ``--adapter none``, the bundled guide as knowledge base), then asks each question through
``POST /v1/assistant/generate`` and counts the answers that state the fact (a pattern of the
expected fact appears in the answer) *and* cite at least one source. Prints each answer, the count,
and the median answer time. Then five questions the guide does not answer, counting those answered
from the guide's sources (by the model or a quoted sentence) instead of declined. A development
set: the facts are written from ``docs/``.

    .venv/bin/python bench/guide_questions.py [--adapter default|none]
        [--set first|...|fifteenth|new|both|all] [--data-dir DIR] [--json]

The index is kept in ``--data-dir`` (default ``.genai/guide-bench``) so later runs start faster.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from genai_factory.assistant.extractive import DECLINE
from genai_factory.config import Settings
from genai_factory.service import create_app

#: (question, pattern of the fact, case-insensitive). Each fact is stated in one sentence of docs/.
QUESTIONS: list[tuple[str, str]] = [
    ("Which port does the service listen on by default?", r"\b8000\b"),
    ("How do I configure a fallback model?", r"fallbacks"),
    ("What does the circuit breaker do after repeated failures?", r"\bopen"),
    ("How long does an open circuit breaker wait before a trial call?", r"\b30\b"),
    ("How do I turn off the shipped LoRA adapter?", r"\bnone\b"),
    ("Which embedding model is used by default?", r"minilm"),
    ("How many dimensions do the default embeddings have?", r"\b384\b"),
    ("What is the default requests-per-minute limit of a new API key?", r"\b60\b"),
    ("What is the default tokens-per-minute limit of a new API key?", r"20,?000"),
    ("How many model decisions may an agent run make by default?", r"\b5\b|\bfive\b"),
    ("What is the default token budget of one agent run?", r"8,?000"),
    ("How large are chunks by default, in tokens?", r"\b160\b"),
    ("Which endpoint serves Prometheus metrics?", r"/metrics"),
    (
        "Do /metrics, /healthz and /readyz need an API key?",
        r"^no\b|need no|without|not need|but .*metrics",
    ),
    ("How do I create an API key with a monthly budget?", r"keys create"),
]

#: A second development set, written after the rules of the extractor were set with the first:
#: ``--set second`` measures how far those rules carry to questions they were not tuned on.
SECOND: list[tuple[str, str]] = [
    ("How many sources are retrieved per question by default?", r"\b3\b|\bthree\b"),
    ("How many tokens do consecutive chunks share by default?", r"\b32\b"),
    ("How long does an unused session live before it expires?", r"604,?800|7 days|seven days"),
    ("How long may a query be?", r"4,?000"),
    ("Which vector database server can I use instead of the embedded store?", r"qdrant"),
    ("What is the largest document the documents API accepts?", r"10,?485,?760|10 mi?b"),
    ("Which retrieval mode is used by default?", r"hybrid"),
    ("What status code does a request get when its key is over its rate limit?", r"\b429\b"),
    ("What is the default prefix of the gateway's Redis keys?", r"gf:"),
    ("What does a request get when its key's budget is used up?", r"\b402\b|budget_exceeded"),
    ("How many images may one vision prediction request hold?", r"\b64\b"),
    ("Which address does the service bind to by default?", r"127\.0\.0\.1"),
    # Not the "8" of "UTF-8".
    ("How many messages of a session are put into a prompt?", r"(?<![-\w])8\b|\beight\b"),
    ("What is the default sampling temperature of the model?", r"\b0(?:\.0)?\b|greedy"),
    ("Where are rate limits kept when the service is scaled out to several replicas?", r"redis"),
]
#: A third development set, written after the rules were set with the first two.
THIRD: list[tuple[str, str]] = [
    ("How many times is a failed model call attempted in all by default?", r"\b3\b|three"),
    ("How many texts are sent in one embedding call by default?", r"\b32\b"),
    ("Which fusion method does hybrid retrieval use by default?", r"z-?score"),
    ("How many index versions are kept after a full ingest?", r"default:? `?3\b|\bthree\b"),
    ("How many messages does a session store at most by default?", r"\b40\b"),
    ("What is the wall-clock limit of one agent run?", r"\b60\b"),
    ("Which tools can the agent use?", r"sql_query|sql_schema|calculator|knowledge_search"),
    ("How many steps may one orchestrator plan have?", r"\b4\b|four"),
    ("Where does the service keep its index and other state by default?", r"\.genai"),
    ("What is the default log level?", r"\binfo\b"),
    ("Which file formats does ingest index?", r"markdown|restructuredtext|plain text"),
    ("What is the default cap on answer tokens?", r"\b256\b"),
    ("How long does a process reuse a looked-up API key?", r"\b5\b|five"),
    ("Which output guards run on an answer by default?", r"pii|toxicity|prompt_leak|groundedness"),
    ("How long is the longest wait between two retries of a model call?", r"\b8\b|eight"),
]
#: A fourth set, written before the retrieval and ranking rules were changed for the third set's
#: misses and never used to tune them: ``--set new`` checks whether those changes generalize.
FOURTH: list[tuple[str, str]] = [
    ("How many tokens may each model call of the agent write?", r"\b160\b"),
    ("How long may one tool call of the agent take before it times out?", r"\b10\b"),
    ("How long is the wait after the first failed attempt of a model call?", r"0\.5"),
    ("How much time does one model call get in total by default?", r"\b120\b"),
    ("At what share of a key's budget is a budget alert sent?", r"0\.8|80 ?%"),
    ("How often are the MLOps gauges refreshed by default?", r"\b60\b"),
    ("What status code does a request get while the service is still loading?", r"\b503\b"),
    ("Which file types can I upload to the documents API?", r"pdf|html"),
    ("What is the largest image the vision endpoint accepts?", r"5,?000,?000|5 ?mb"),
    ("Where does the container image keep its data?", r"/data\b"),
    ("Which user does the container run as?", r"10001"),
    ("How many requests per window does the drift check read at most?", r"2,?000"),
    ("Which guards check the user's question by default?", r"injection.*toxicity|toxicity.*pii"),
    ("What is the largest request body the service accepts by default?", r"1 ?mib|1,?048,?576"),
    ("Which exit code does the command line return when the input is wrong?", r"\b2\b"),
]
#: A fifth set, written before the rules were changed for the misses of the first four and never
#: used to tune them, on pages the others use little (sessions, keys, safety, the MLOps loop,
#: vision, deploy, observability): ``--set fifth`` is the unseen check.
FIFTH: list[tuple[str, str]] = [
    ("How much message data may one session store?", r"128 ?kib|131,?072"),
    ("What status code do I get when I read a session created by another key?", r"\b403\b"),
    ("Where are sessions stored by default?", r"sessions\.db"),
    ("How many hex characters make up the public id of an API key?", r"\b12\b|twelve"),
    ("What is the minimum retrieval score for answering from the guide in auto mode?", r"0\.25"),
    ("What share of traces is kept by default?", r"default:? `?1\.0|all traces|every trace"),
    (
        "How long does the budget alert webhook wait before it times out?",
        r"default:? `?5\b|\b5 ?s\b",
    ),
    ("How many topics does the drift check group the questions into?", r"(?<![-\w])8\b|\beight\b"),
    ("How often does the service look up a new champion model?", r"\b10\b|\bten\b"),
    ("How many hours does the current drift window cover by default?", r"\b24\b"),
    (
        "How many training steps does the loop give a challenger by default?",
        r"default:? `?150\b|\b150 steps",
    ),
    ("What prevalence does the vision classifier expect by default?", r"0\.625"),
    ("Which guard checks each retrieved chunk?", r"injection"),
    ("What HTTP status does a request blocked by a guard get?", r"\b400\b"),
    ("How large is the service's container image?", r"2\.27 ?gb|2,?268,?623,?787"),
]
#: A sixth set, written before the retrieval rules were changed for the misses of the first five
#: and never used to tune them, on pages the others use little (errors, the command line,
#: configuration, operations, agents, deploy): ``--set sixth`` is the unseen check.
SIXTH: list[tuple[str, str]] = [
    # Not the "0.415" of a score.
    (
        "What status code does an upload get when its file type is not supported?",
        r"(?<![.\d])415\b",
    ),
    ("What HTTP status do I get when the model does not answer in time?", r"\b504\b"),
    ("How do I switch back to the previous index version?", r"index rollback"),
    ("What exit code does the drift job return when it finds drift?", r"[`*]3[`*]+ drift"),
    ("Which scores does the retrieval evaluation print?", r"ndcg@10"),
    ("Where is the interaction log stored by default?", r"gateway\.db"),
    ("How many failures in a row open a circuit breaker by default?", r"failures \(default 5\)"),
    ("Which environment variable sets how many sources are retrieved?", r"GENAI_RAG__TOP_K"),
    ("How many characters of each source does the model see?", r"source_chars\W.*\b600\b"),
    ("How many images does each container registry repository keep?", r"keep 50 images"),
    ("What happens to a retrieved chunk that the injection guard flags?", r"chunk is dropped"),
    ("Which image formats does the vision endpoint accept?", r"png.{0,5}jpe?g.{0,10}dicom"),
    (
        "Which tool-call format does the embedded model use by default?",
        r"json_staged`? \(the default",
    ),
    ("Which ports do the two assistant replicas of the Compose stack use?", r"8001.{0,20}8002"),
    ("Which library runs the scheduled MLOps jobs?", r"apscheduler"),
]
#: A seventh set, written before the changes made for the sixth set's misses and never used to
#: tune them, spread over the pages (errors, operations, the API, the gateway, agents, safety,
#: deploy, MLOps, observability, vision, testing, the command line): ``--set seventh`` is the
#: unseen check of those changes.
SEVENTH: list[tuple[str, str]] = [
    (
        "What status code do I get when the model provider keeps rate limiting the service?",
        r"provider_rate_limited\W.{0,30}\b503\b",
    ),
    ("What share of answers should arrive within 10 seconds?", r"\b95 ?% of answers"),
    ("Which LoRA rank does training use by default?", r"`--rank`, default 8\b"),
    (
        "How many tokens of conversation history may go into a prompt?",
        r"estimated tokens, default 600\b",
    ),
    ("When does the service turn authentication off by itself?", r"loopback address"),
    ("Which mode answers a question when I do not choose one?", r"`auto`, the default"),
    ("How many images does the vision model train on?", r"4,?690"),
    ("Where can I read the interactive API documentation?", r"at `/docs`"),
    ("Does the agent route redact names in the question?", r"input `pii` is `warn`"),
    ("Which base image does the container build start from?", r"python:3\.11-slim-bookworm"),
    ("Where does MLflow store its runs by default?", r"<data.dir>/mlflow\.db"),
    ("Are the logs written as JSON?", r"JSON lines\s+when stderr is not a terminal"),
    (
        "How many prompts does the benchmarks' fake model remember?",
        r"latest 100\b",
    ),
    (
        "How many rows of the fine-tuning data may be unanswerable by default?",
        r"unanswerable-share`? \(default 0\.25",
    ),
    ("How do I rebuild the index from a folder as a new version?", r"--full"),
]
#: An eighth set, written before the changes made for the seventh set's misses and never used to
#: tune them, on pages the others use little (getting started, models, testing, the architecture,
#: the command line, observability, reliability, the vector store): ``--set eighth`` is the unseen
#: check of those changes.
EIGHTH: list[tuple[str, str]] = [
    ("How long does the first install take on a 2-core machine?", r"9 to 12 minutes"),
    ("How many parameters does the embedded model have?", r"\b135 ?m\b"),
    ("Which GGUF model does the llama.cpp backend run by default?", r"smollm2"),
    (
        "How much generation speed does an adapter applied at every token cost?",
        r"a fifth of the generation speed",
    ),
    (
        "Does the fallback chain move on when the provider rejects a request with 400?",
        r"never moves on",
    ),
    ("Which HTTP status codes does a model call retry?", r"408, 409, 429"),
    ("In which unit are model prices given?", r"per million (?:input and output )?tokens"),
    ("What value of the circuit breaker state metric means open?", r"\b2 open"),
    ("What happens to a traceparent header sent by the client?", r"span link"),
    (
        "What exit code does genai-factory eval run return when a gate fails?",
        r"exits `?1\b",
    ),
    ("What kind of embeddings does the fake embedder produce?", r"bag-of-words"),
    ("Can the tests reach the internet?", r"never reach the internet|outbound connections"),
    ("Where are the tables of component names kept?", r"genai_factory\.components|components\.py"),
    ("Which header stops the UI pages from being framed?", r"x-frame-options|frame-ancestors"),
    ("How long does exact vector search take for 100,000 chunks?", r"\b9 ms\b"),
]
#: A ninth set, written before any change made for the misses of the first eight and never used to
#: tune them, on pages the others use little (safety, errors, observability, operations, deploy,
#: MLOps): ``--set ninth`` is the unseen check of those changes.
NINTH: list[tuple[str, str]] = [
    ("At what score does the toxicity guard block an answer?", r"(?<![\d.])0\.8\b"),
    (
        "How many consecutive words of the system prompt make the leak guard block an answer?",
        r"\beight\b|(?<![-\w.])8 consecutive",
    ),
    ("In how many languages are the injection guard's rules written?", r"twelve|\b12 languages"),
    ("How many locales fill the name tagger's training sentences?", r"\b27 locales"),
    ("What status code does a request without an API key get?", r"\b401\b"),
    ("What status code does an upload larger than the size limit get?", r"\b413\b"),
    ("How long may the comment of a feedback be?", r"2,?000 characters"),
    (
        "How many records does the interaction log write in one transaction at most?",
        r"\b100 records",
    ),
    ("How many records does a full interaction log queue hold?", r"10,?000 records"),
    ("How many steps was the shipped adapter trained for?", r"\b240 steps"),
    ("Into how many buckets may the stats series cut its window?", r"1.240"),
    ("After how many days do the reports move to infrequent access?", r"\b30 days"),
    ("How long do the Kubernetes pods get to shut down gracefully?", r"\b150 ?s\b"),
    ("What runs as PID 1 in the container?", r"\btini\b"),
    ("Which options does the serve command take?", r"--host.{0,30}--port"),
]
#: A tenth development set, written before any rule was changed after the ninth.
TENTH: list[tuple[str, str]] = [
    ("How many epochs does the default vision recipe train for?", r"\b30 epochs"),
    ("What learning rate does the default vision recipe use?", r"3e-3"),
    ("How long may a whole agent run take by default?", r"\b60\b"),
    ("How long does a tool call get before it fails with a timeout?", r"\b10\b"),
    ("At what share of its budget does a key trigger a budget alert?", r"0\.8\b|80 ?%"),
    ("What share of traces is kept by default?", r"1\.0\b|100 ?%|every trace|all traces"),
    ("How often are the MLOps gauges read from the registry?", r"\b60\b"),
    ("Where are the API keys and the spend ledger kept by default?", r"gateway\.db|sqlite"),
    ("How long does a process reuse a looked-up API key?", r"\b5\b"),
    ("What service name do the spans carry by default?", r"genai-factory"),
    ("How many tokens may each model call of an agent write?", r"\b160\b"),
    ("Which user id does the container run as?", r"10001"),
    ("How often does the operations page refresh?", r"\b10(?: ?s\b|-second| seconds)"),
    ("Between how many replicas does the autoscaler scale the deployment?", r"2.{1,3}6"),
    ("Which port does the Kubernetes Service expose?", r"\b80\b"),
]
#: An eleventh development set, written before the last changes were measured on the tenth and
#: never used to find a rule: the unseen check of them.
ELEVENTH: list[tuple[str, str]] = [
    ("What share of /v1 requests must be answered without a 5xx?", r"99 ?%"),
    ("Over how many days are the service objectives measured?", r"\b30 days"),
    ("At what multiple of the sustainable rate does a burn-rate alert page?", r"14\.4"),
    ("Which datasources are provisioned for Grafana?", r"tempo"),
    ("How is the prompt formatted for the embedded model?", r"chat template"),
    ("In which format are the merged adapter's matrices written?", r"q8_0"),
    ("What is the context window of the embedded model by default?", r"2,?048"),
    ("How many threads does llama.cpp use by default?", r"cpu count|max 8"),
    ("Which model id is reported in answers by default?", r"smollm2-135m-instruct-q4_1"),
    ("What is the per-request HTTP timeout for an OpenAI-compatible server?", r"\b60\b"),
    ("Which retrieval modes can I choose from?", r"dense.{0,60}keyword|keyword.{0,60}dense"),
    ("Where are the embedding vectors cached?", r"/cache"),
    ("How many chunks are taken from each retriever?", r"\b100\b"),
    ("What is the RRF constant?", r"\b60\b"),
    ("How many stable replicas does the prod overlay run?", r"\b3\b|three"),
]
#: A twelfth development set, written before any change was measured on it: plain questions a new
#: user asks (what things are and do, how to do a task), the unseen check of the rules after it.
TWELFTH: list[tuple[str, str]] = [
    ("What is GenAI Factory?", r"language models|API products"),
    ("What does the circuit breaker do?", r"fail at once|without touching the backend"),
    ("How do I add my own documents to the knowledge base?", r"ingest"),
    ("How do I revoke an API key?", r"keys revoke|DELETE /v1/admin/keys"),
    ("How do I promote a model version to champion?", r"models promote"),
    ("Which significance level does the drift check use?", r"0\.01"),
    ("How many rows must a window hold before a drift test runs?", r"\b30\b"),
    ("What weight does the reranker's score get?", r"0\.35"),
    ("Which Python version do I need?", r"3\.11"),
    ("How do I run the tests?", r"make test"),
    ("Which database does the SQL agent read by default?", r"shop\.db"),
    ("Where are sessions kept when a Redis URL is set?", r"redis"),
    ("What does the drift job compare?", r"two windows|windows"),
    ("Which embedding model does the assistant use?", r"MiniLM"),
    ("Which language model runs by default?", r"SmolLM2"),
]
#: A thirteenth development set, written after the rules the twelfth led to and before they were
#: measured on it: the unseen check of them.
THIRTEENTH: list[tuple[str, str]] = [
    ("What does the liveness endpoint return?", r"status.{0,4}ok"),
    ("Can I keep the question texts out of the interaction log?", r"store_text"),
    ("Where do the service's logs go?", r"stderr"),
    ("What does the command line print when a command fails?", r"error:"),
    ("Which status code does a request get when every circuit breaker is open?", r"\b503\b"),
    ("What status does the upload of an empty document get?", r"\b422\b"),
    ("Which exit code does the vision job return when the challenger loses its gate?", r"\b4\b"),
    ("How do I check that the service process is alive?", r"/healthz"),
    ("What does uploading a document that is already indexed return?", r"duplicate"),
    ("Which header tells a rate-limited client when to retry?", r"Retry-After"),
    ("How do I switch off the JSON log lines?", r"json_logs"),
    ("Which exception do all of the factory's errors derive from?", r"GenAIFactoryError"),
    ("What happens when a session grows too long?", r"oldest messages"),
    ("How do I turn off the metrics endpoint?", r"metrics_enabled"),
    ("Which statistics does the image drift check use?", r"\bKS\b|\bMMD\b"),
]
#: A fourteenth development set, written before the rules the twelfth and thirteenth led to were
#: measured on it: the unseen check of them.
FOURTEENTH: list[tuple[str, str]] = [
    ("How can I estimate the tokens of a text without a tokenizer?", r"estimate_tokens"),
    ("Where is the merged model cached?", r"\.cache/genai-factory/merged"),
    ("Which paths need no API key?", r"/healthz"),
    ("Where does the ops page keep the key I type in?", r"localStorage"),
    ("What happens when the settings are invalid?", r"wrong field|one message"),
    ("What does the service do on its first start?", r"indexes the bundled"),
    ("How do I use a stronger model?", r"GENAI_LLM__|three variables"),
    ("How do I ask a question from the command line?", r"genai-factory ask"),
    ("Which routes can the safety guards be set for?", r"chat.{0,20}rag.{0,20}agent"),
    ("How soon do other processes refuse a revoked key?", r"\b5\b|key_cache_s"),
    ("Can an index be opened with another embedding model?", r"cannot|can't|\bno\b"),
    ("What does the sql_query tool return?", r"columns and rows"),
    ("Which providers can the language model use?", r"openai_compatible"),
    ("What does the readiness endpoint report?", r"index_chunks|model_loaded"),
    ("What does the groundedness guard do by default?", r"\bwarn"),
]
#: A fifteenth development set, written after every rule of the last round and before it was
#: measured: the last unseen check.
FIFTEENTH: list[tuple[str, str]] = [
    ("How do I get the answer as a stream?", r'"?stream"?: true|server-sent'),
    ("What does the stream end with when the model fails midway?", r"error"),
    ("How do I go back to the previous champion model?", r"models rollback"),
    ("How do I run an evaluation suite?", r"eval run"),
    ("Are budget periods days or months?", r"days or months"),
    ("What is a new key's default request limit?", r"\b60\b"),
    ("Which roles may the messages of a chat completion have?", r"developer|assistant"),
    ("What does GET /v1/models/{id} return?", r"one model|404"),
    ("Where do the Compose stack's passwords come from?", r"\.env"),
    ("Do the assistant containers get a writable root filesystem?", r"read-only"),
    ("Which OpenMP library does the runtime image add?", r"libgomp1"),
    ("Where are the Grafana dashboards generated from?", r"generate\.py"),
    ("What does a fallback model do?", r"primary model fails|answers when"),
    ("Where are the fallback models configured?", r"llm\.fallbacks"),
    ("Does the answer say which model wrote it?", r"`?model`? field"),
]
SETS = {
    "first": QUESTIONS,
    "second": SECOND,
    "third": THIRD,
    "fourth": FOURTH,
    "fifth": FIFTH,
    "sixth": SIXTH,
    "seventh": SEVENTH,
    "eighth": EIGHTH,
    "ninth": NINTH,
    "tenth": TENTH,
    "eleventh": ELEVENTH,
    "twelfth": TWELFTH,
    "thirteenth": THIRTEENTH,
    "fourteenth": FOURTEENTH,
    "fifteenth": FIFTEENTH,
    "new": FOURTH,
    "both": QUESTIONS + SECOND,
    "all": QUESTIONS
    + SECOND
    + THIRD
    + FOURTH
    + FIFTH
    + SIXTH
    + SEVENTH
    + EIGHTH
    + NINTH
    + TENTH
    + ELEVENTH
    + TWELFTH
    + THIRTEENTH
    + FOURTEENTH
    + FIFTEENTH,
}

#: Questions the guide does not answer: the answer should decline (or the route be plain chat),
#: never quote an unrelated sentence of the guide as if it answered.
UNANSWERED: list[str] = [
    "What is the capital of Australia?",
    "Which GPU models does the service support for training?",
    "How do I export answers to Microsoft Excel?",
    "What is the price of the enterprise licence?",
    "Which version of Windows is required?",
]


def ask_unanswered(client: TestClient) -> list[dict[str, Any]]:
    results = []
    for question in UNANSWERED:
        body = client.post("/v1/assistant/generate", json={"query": question}).json()
        answer = str(body.get("answer", body))
        # Answered from the guide (by the model or by a quoted sentence) instead of declining.
        from_guide = body.get("route") == "rag" and answer != DECLINE
        results.append(
            {
                "question": question,
                "answer": answer,
                "route": body.get("route"),
                "answered_from_guide": from_guide,
            }
        )
    return results


def ask_all(settings: Settings, questions: list[tuple[str, str]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 900
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"service not ready: {client.get('/readyz').json()}")
            time.sleep(1)
        for question, pattern in questions:
            started = time.perf_counter()
            response = client.post("/v1/assistant/generate", json={"query": question})
            elapsed = time.perf_counter() - started
            body = response.json()
            answer = str(body.get("answer", body))
            cited = bool(body.get("citations"))
            fact = re.search(pattern, answer, re.IGNORECASE) is not None
            excerpts = " ".join(str(c.get("excerpt", "")) for c in body.get("citations", []))
            results.append(
                {
                    "question": question,
                    "answer": answer,
                    "fact": fact,
                    "cited": cited,
                    "ok": fact and cited,
                    # Whether the fact is in the excerpts shown to the model (retrieval, not the model).
                    "in_sources": re.search(pattern, excerpts, re.IGNORECASE) is not None,
                    "seconds": round(elapsed, 2),
                }
            )
        results.extend(ask_unanswered(client))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="default", help="llm.adapter: default, none or a file")
    parser.add_argument("--data-dir", type=Path, default=Path(".genai/guide-bench"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--set", choices=sorted(SETS), default="first", help="which questions")
    args = parser.parse_args()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=args.data_dir,
        llm={"adapter": args.adapter},
        auth={"enabled": False},
    )
    everything = ask_all(settings, SETS[args.set])
    results = [r for r in everything if "fact" in r]
    unanswered = [r for r in everything if "fact" not in r]
    good = sum(r["ok"] for r in results)
    retrieved = sum(r["in_sources"] for r in results)
    median = statistics.median(r["seconds"] for r in results)
    if args.json:
        print(
            json.dumps(
                {
                    "adapter": args.adapter,
                    "set": args.set,
                    "ok": good,
                    "of": len(results),
                    "results": results,
                    "not_in_guide": unanswered,
                }
            )
        )
        return
    for r in results:
        mark = "OK  " if r["ok"] else ("nocite" if r["fact"] else "MISS")
        where = "in sources" if r["in_sources"] else "NOT in sources"
        print(f"{mark} [{where}] {r['question']}\n     -> {r['answer'][:220]!r} ({r['seconds']} s)")
    for r in unanswered:
        mark = "ANSWERED" if r["answered_from_guide"] else "ok      "
        print(f"{mark} (not in the guide) {r['question']}\n     -> {r['answer'][:160]!r}")
    answered = sum(r["answered_from_guide"] for r in unanswered)
    print(
        f"questions the guide does not answer: {answered}/{len(unanswered)} answered from the "
        "guide instead of declined"
    )
    print(
        f"adapter={args.adapter}, set {args.set}: {good}/{len(results)} state the fact with a citation; "
        f"the fact in the first 300 characters of a source: {retrieved}; median answer {median:.1f} s"
    )


if __name__ == "__main__":
    main()
