"""Settings: the only module that reads the environment.

Sources, highest priority first: explicit constructor arguments, environment variables
(prefix ``GENAI_``, nested delimiter ``__``, e.g. ``GENAI_LLM__PROVIDER=openai_compatible``),
a ``.env`` file, an optional YAML file (``--config`` or ``GENAI_CONFIG``), then the defaults below,
which run everything embedded with no network and no API key.

The YAML file holds data only. Component fields are names checked, when the settings load, against
the registered components' tables (:mod:`genai_factory.components`), so a config file can choose
among registered components but can never make the process import a class.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from genai_factory import components
from genai_factory.exceptions import ConfigurationError


def registered(table: Mapping[str, object], kind: str, *also: str) -> AfterValidator:
    """A validator accepting only the names of ``table`` (and ``also``), read when a value is
    validated, so a component registered at run time is accepted too."""

    def check(name: str) -> str:
        if name not in table and name not in also:
            raise ValueError(components.unknown_name(kind, name, [*also, *table]))
        return name

    return AfterValidator(check)


LLMProvider = Annotated[str, registered(components.LLM_PROVIDERS, "model provider")]
EmbeddingProvider = Annotated[str, registered(components.EMBEDDERS, "embeddings provider")]
VectorStoreName = Annotated[str, registered(components.VECTOR_STORES, "vector store")]
#: A registered session store, or ``auto`` (Redis when a Redis URL is configured, else SQLite).
SessionBackend = Annotated[str, registered(components.SESSION_STORES, "session store", "auto")]
#: A registered agent tool (``genai_factory.agents.registry`` builds them); config may name no other.
ToolName = Annotated[str, registered(components.TOOLS, "agent tool")]
GuardName = Annotated[str, registered(components.GUARDS, "guard")]
RerankerName = Annotated[str, registered(components.RERANKERS, "reranker", "none")]
JobName = Annotated[str, registered(components.JOBS, "job")]


def bundled_docs_dir() -> Path:
    """The bundled knowledge base: the user guide shipped in the wheel, or ``docs/`` of a checkout."""
    shipped = Path(__file__).resolve().parent / "_docs"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "docs"


def bundled_shop_db() -> Path | None:
    """``examples/shop.db`` of a checkout (the agent's demo database), if it is there."""
    path = Path(__file__).resolve().parents[2] / "examples" / "shop.db"
    return path if path.is_file() else None


class Price(BaseModel):
    """USD per one million tokens."""

    input_per_million: float = Field(default=0.0, ge=0)
    output_per_million: float = Field(default=0.0, ge=0)


class Credentials(BaseModel):
    """A remote endpoint's key: given directly (kept secret) or named by an environment variable."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None

    def resolved_api_key(self) -> str | None:
        """The key itself, or the content of the environment variable it names."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class ModelSettings(Credentials):
    """One model backend. ``model`` is the model id sent to the provider.

    ``adapter`` (llama.cpp only): the LoRA adapter applied on top of the GGUF model. ``default``:
    the adapter shipped for the bundled model (nothing for another ``model_path``); ``none``: no
    adapter; else the path of a GGUF adapter file (docs/mlops.md, "The shipped adapter").
    ``adapter_merge``: fold the adapter into the model's weights once (a cached file, served at
    the bare model's speed) instead of applying it at every token.
    ``decline_shift`` (llama.cpp only): added to the logit of the decline's first token ("I" of
    "I don't know") at the first token of answers from sources (the RAG prompt), a calibration of
    how readily the model declines; unset: the value stored with the adapter (the shipped
    adapter's ``decline_shift`` in its JSON file), else 0 (docs/mlops.md, "The shipped adapter").
    """

    provider: LLMProvider = "llamacpp"
    model: str = "smollm2-135m-instruct-q4_1"
    model_path: Path | None = None
    adapter: str = "default"
    adapter_merge: bool = True
    decline_shift: float | None = Field(default=None, ge=-20.0, le=20.0)
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int = Field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)), ge=1)
    timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _remote_needs_url(self) -> ModelSettings:
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider 'openai_compatible' needs base_url")
        return self


class ResilienceSettings(BaseModel):
    """Retry, deadline and circuit-breaker settings applied around every model."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=8.0, ge=0)
    deadline_s: float = Field(default=120.0, gt=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)


class LLMSettings(ModelSettings):
    """The primary model, its ordered fallbacks, resilience and the price table."""

    fallbacks: list[ModelSettings] = Field(default_factory=list)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    pricing: dict[str, Price] = Field(default_factory=dict)
    #: Model ids that cost nothing. Unpriced ``llamacpp`` and ``fake`` models are free anyway; any
    #: other unpriced model is refused for keys with a budget (see docs/gateway.md).
    free_models: list[str] = Field(default_factory=list)


class EmbeddingSettings(Credentials):
    """The embedder. ``cache``: keep every vector in ``<data_dir>/cache`` by content hash."""

    provider: EmbeddingProvider = "minilm"
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(default=32, ge=1, le=4096)
    timeout_s: float = Field(default=60.0, gt=0)
    cache: bool = True


class RetrievalSettings(BaseModel):
    """How a query is answered (docs/knowledge-base.md); the defaults are the SciFact-measured best.

    ``mode``: ``hybrid`` (BM25 + vectors), ``dense`` or ``keyword``. ``fusion``: ``zscore`` or
    ``rrf``, with a weight per retriever. ``candidates``: chunks taken from each retriever.
    ``keyword_weights``: BM25 weights of the title, heading, body and context (the chunk with its
    neighbours) fields. ``reranker``: ``none``
    or ``sentence`` (MiniLM max-sim over the sentences of the best ``rerank_depth`` candidates,
    weighted ``rerank_weight`` against the fused score).
    """

    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    fusion: Literal["zscore", "rrf"] = "zscore"
    dense_weight: float = Field(default=0.5, ge=0.0)
    keyword_weight: float = Field(default=0.6, ge=0.0)
    rrf_k: int = Field(default=60, ge=1)
    candidates: int = Field(default=100, ge=1, le=5000)
    keyword_weights: tuple[float, float, float, float] = (1.0, 1.0, 0.2, 1.0)
    reranker: RerankerName = "sentence"
    rerank_depth: int = Field(default=100, ge=1, le=1000)
    rerank_weight: float = Field(default=0.35, ge=0.0)


class QdrantSettings(Credentials):
    """Qdrant: ``base_url`` of a server, or local mode in ``path`` (default ``<index dir>/qdrant``)."""

    path: Path | None = None
    collection_prefix: str = Field(default="genai_", pattern=r"^[A-Za-z0-9_-]*$")
    timeout_s: float = Field(default=30.0, gt=0)


class RAGSettings(BaseModel):
    knowledge_dirs: list[Path] = Field(default_factory=lambda: [bundled_docs_dir()])
    ingest_on_start: bool = True
    chunk_tokens: int = Field(default=160, ge=16, le=4096)
    chunk_overlap: int = Field(default=32, ge=0)
    top_k: int = Field(default=3, ge=1, le=50)
    source_chars: int = Field(default=600, ge=50, le=20_000)
    min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    excerpt_chars: int = Field(default=300, ge=20)
    #: When the model declines although a source states the answer, invents a figure, or answers
    #: with a sentence other than the best-matching ones, answer with the best-matching sentence
    #: (``assistant.extractive``), if it scores at least ``extract_min_score``.
    extract_on_decline: bool = True
    extract_min_score: float = Field(default=0.65, ge=0.0, le=2.0)
    store: VectorStoreName = "embedded"
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    keep_versions: int = Field(default=3, ge=2, le=100)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RAGSettings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self


class ServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_query_chars: int = Field(default=4000, ge=1)
    #: Request bodies larger than this get 413 before they are read whole (document uploads may
    #: be as large as ``rag.max_upload_bytes`` plus this).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_history_messages: int = Field(default=8, ge=0)
    system_prompt: str = (
        "You are GenAI Assistant, a concise and helpful assistant. Answer in a few sentences."
    )


class AuthSettings(BaseModel):
    """API keys. ``enabled="auto"``: on, except when the service binds to a loopback address and
    no active key exists yet (then off, with a warning at start-up). ``false`` is refused unless the
    service binds to a loopback address."""

    enabled: bool | Literal["auto"] = "auto"
    key_cache_s: float = Field(default=5.0, ge=0, le=300)


class GatewaySettings(BaseModel):
    """Where keys, the spend ledger, rate limits and budgets live, and the defaults for new keys.

    ``database_url`` (SQLAlchemy URL) holds keys and the ledger: ``None`` means SQLite in the data
    directory; ``postgresql+psycopg://...`` scales out. ``redis_url`` holds limits and budgets so
    they hold across replicas: ``None`` keeps them in the process.
    """

    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = Field(default="gf:", min_length=1, max_length=64)
    default_rpm: int = Field(default=60, ge=1)
    default_tpm: int = Field(default=20_000, ge=1)


class SpecialistSettings(BaseModel):
    """The limits of one specialist of the orchestrator: per step, never shared between steps.

    ``max_steps`` bounds the model decisions of an agent specialist (``sql``, ``calculator``; the
    ``documents`` specialist makes one model call). ``timeout_s`` is the wall-clock limit of the
    step, ``token_budget`` the tokens of all its model calls together.
    """

    max_steps: int = Field(default=4, ge=1, le=50)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    token_budget: int = Field(default=4000, ge=64)


class OrchestratorSettings(BaseModel):
    """The orchestrator of the agent route: questions made of several questions (docs/agents.md).

    ``enabled``: split such a question into steps, each answered by its own specialist (documents,
    SQL, calculator); a question of one step always takes the single-agent path.
    ``max_plan_steps``: steps beyond it are reported as skipped. ``timeout_s``: the whole plan.
    """

    enabled: bool = True
    max_plan_steps: int = Field(default=4, ge=2, le=16)
    timeout_s: float = Field(default=180.0, gt=0, le=3600)
    documents: SpecialistSettings = Field(
        default_factory=lambda: SpecialistSettings(max_steps=1, timeout_s=60.0, token_budget=2000)
    )
    sql: SpecialistSettings = Field(
        default_factory=lambda: SpecialistSettings(max_steps=5, timeout_s=60.0, token_budget=8000)
    )
    calculator: SpecialistSettings = Field(
        default_factory=lambda: SpecialistSettings(max_steps=3, timeout_s=30.0, token_budget=3000)
    )


class AgentSettings(BaseModel):
    """The agent route: its tools, its limits and the database its SQL tools read.

    ``tools`` are the tools enabled on the agent route (registered names only). ``database`` is a
    SQLite path or ``postgresql://`` URL; ``None`` means the bundled ``examples/shop.db`` when it
    exists (the SQL tools are left out when there is no database). ``action_format``: ``auto``
    uses native tool calling with ``openai_compatible`` models, two-stage constrained actions
    (``json_staged``) with ``llamacpp`` and one JSON action per step (``json_schema``) otherwise
    (docs/agents.md). ``auto_route``: whether ``mode=auto`` may choose the agent. ``adapter``
    (llama.cpp only): the LoRA adapter the agent's model runs with instead of ``llm.adapter``:
    ``default`` (``shipped`` when the agent runs the bundled model on the bundled
    ``examples/shop.db``, else ``none``), ``none`` (the agent uses the assistant's model),
    ``shipped`` (the adapter shipped for the bundled model and ``examples/shop.db``), the path of
    a GGUF adapter file, or an alias or version of ``mlops.agent_llm_name`` (``champion``,
    ``challenger``, ``3``).
    """

    enabled: bool = True
    tools: list[ToolName] = Field(default_factory=lambda: list(components.TOOLS))
    max_steps: int = Field(default=5, ge=1, le=50)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    token_budget: int = Field(default=8000, ge=256)
    step_max_tokens: int = Field(default=160, ge=16, le=4096)
    tool_timeout_s: float = Field(default=10.0, gt=0, le=600)
    database: str | None = None
    sql_max_rows: int = Field(default=50, ge=1, le=10_000)
    action_format: Literal["auto", "json_schema", "json_staged", "native"] = "auto"
    auto_route: bool = True
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    adapter: str = "default"

    @model_validator(mode="after")
    def _tools_unique(self) -> AgentSettings:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError("agents.tools names a tool twice")
        return self


class MemorySettings(BaseModel):
    """Session history: where it lives and how much of it goes back into the prompt.

    ``backend``: ``auto`` is Redis when ``gateway.redis_url`` is set (sessions then follow a client
    across replicas), else SQLite at ``<data_dir>/sessions.db``; ``memory`` keeps them in the process.
    ``max_tokens`` bounds the history put into a prompt (estimated tokens, summary included, newest
    turns first); ``service.max_history_messages`` bounds its length. Sessions not used for
    ``ttl_s`` are forgotten. A session stores at most ``max_session_messages`` messages (never
    fewer than the window and one more turn) and ``max_session_bytes`` bytes of them; past either
    the oldest go. ``summaries``: turns leaving the prompt's window are summarised by the model in
    the background and the summary goes into later prompts (at most ``summary_max_tokens``).
    """

    backend: SessionBackend = "auto"
    max_tokens: int = Field(default=600, ge=0, le=100_000)
    ttl_s: int = Field(default=7 * 86_400, ge=60)
    max_session_messages: int = Field(default=40, ge=1, le=10_000)
    max_session_bytes: int = Field(default=131_072, ge=1_024, le=16_777_216)
    summaries: bool = True
    summary_max_tokens: int = Field(default=128, ge=16, le=1_024)
    redis_url: str | None = None


class ObservabilitySettings(BaseModel):
    """Metrics, traces, logs, the interaction log and the budget alerts (docs/observability.md).

    ``otlp_endpoint``: an OTLP/HTTP traces URL (``http://collector:4318/v1/traces``); ``None``
    exports no spans. ``json_logs``: ``auto`` writes JSON lines when stderr is not a terminal.
    ``database_url``: the interaction log (SQLAlchemy URL); ``None`` uses the gateway's database.
    ``budget_alert_share``: a key whose spend in its budget period passes this share of its budget
    is reported once per period (log, metric, and ``budget_alert_webhook`` when set).
    ``interaction_log_durable``: a response (a stream's closing events) is sent only once the
    request's interaction record is committed (or spilled), so a killed process loses no record of
    an answered request; ``false`` sends it at once and writes the record just after.
    """

    metrics_enabled: bool = True
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = Field(default="genai-factory", min_length=1)
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    json_logs: bool | Literal["auto"] = "auto"
    access_log: bool = True
    database_url: str | None = None
    store_text: bool = True
    interaction_log_durable: bool = True
    budget_alert_share: float = Field(default=0.8, gt=0.0, le=1.0)
    budget_alert_webhook: str | None = None
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: How often the MLOps gauges (champion versions, drift verdict, job runs, gate results) are
    #: read from the registry; ``0`` never reads them.
    mlops_refresh_s: float = Field(default=60.0, ge=0)


GuardAction = Literal["block", "redact", "warn", "strip"]
SafetyRoute = Literal["default", "chat", "rag", "agent"]


class GuardSpec(BaseModel):
    """One guard of a route: its registered name, its action and an optional score threshold."""

    guard: GuardName
    action: GuardAction = "block"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _action_allowed(self) -> GuardSpec:
        accepted = components.GUARDS[self.guard].actions
        if self.action not in accepted:
            allowed = ", ".join(accepted)
            raise ValueError(f"guard {self.guard!r} accepts actions {allowed}, not {self.action!r}")
        return self


class RouteSafety(BaseModel):
    """The guards of one route: on the user's input, on retrieved context, on the answer."""

    input: list[GuardSpec] = Field(default_factory=list)
    context: list[GuardSpec] = Field(default_factory=list)
    output: list[GuardSpec] = Field(default_factory=list)


#: The toxicity classifier's F1-optimal threshold on tweets (0.4) flags 5-12 % of neutral prose;
#: at 0.8 it flags none of the user guide's lines nor of 517 benign prompts (docs/safety.md).
TOXICITY_SERVICE_THRESHOLD = 0.8
CONTEXT_INJECTION_THRESHOLD = 0.95


def _default_safety_routes() -> dict[SafetyRoute, RouteSafety]:
    def screening(pii: GuardAction) -> list[GuardSpec]:
        # Injection and toxicity read the same text (their features are computed once), then PII
        # redaction changes what the model sees.
        return [
            GuardSpec(guard="injection", action="block"),
            GuardSpec(guard="toxicity", action="warn", threshold=TOXICITY_SERVICE_THRESHOLD),
            GuardSpec(guard="pii", action=pii),
        ]

    def route(pii: GuardAction) -> RouteSafety:
        return RouteSafety(
            input=screening(pii),
            # Retrieved chunks are documents, not prompts: the rules, plus the classifier only
            # when it is nearly certain (at 0.5 it flags 6 % of the user guide's paragraphs).
            context=[
                GuardSpec(guard="injection", action="block", threshold=CONTEXT_INJECTION_THRESHOLD)
            ],
            output=[
                GuardSpec(guard="pii", action="redact"),
                GuardSpec(guard="toxicity", action="block", threshold=TOXICITY_SERVICE_THRESHOLD),
                GuardSpec(guard="prompt_leak", action="block"),
                GuardSpec(guard="groundedness", action="warn"),
            ],
        )

    # The agent's model reads the database's rows, which hold the same personal data a question
    # names: redacting "Ada Lovelace" from "What did Ada Lovelace order?" protects nothing and
    # breaks the lookup. Its input is flagged (and the interaction log still redacts it).
    return {"default": route("redact"), "agent": route("warn")}


class SafetySettings(BaseModel):
    """Input and output guards (docs/safety.md). Routes not listed use ``default``.

    ``artefact_dir``: trained guard classifiers (``<name>.json`` + ``.npz``); ``None`` means
    ``<data_dir>/safety``, falling back to the artefacts shipped in the package.
    ``reversible_redaction``: numbered placeholders that authorised callers can map back.
    ``hold_chars``: how much streamed text is held back until the output guards have seen it.
    """

    enabled: bool = True
    routes: dict[SafetyRoute, RouteSafety] = Field(default_factory=_default_safety_routes)
    artefact_dir: Path | None = None
    reversible_redaction: bool = False
    hold_chars: int = Field(default=64, ge=16, le=4096)

    @model_validator(mode="after")
    def _has_default(self) -> SafetySettings:
        if "default" not in self.routes:
            raise ValueError("safety.routes must define the 'default' route")
        return self


class ReindexSettings(BaseModel):
    """``jobs reindex``: rebuild the index from ``sources`` and activate it only if it is not worse.

    ``sources``: files or folders to index (empty: ``rag.knowledge_dirs``, by default the bundled
    user guide). ``eval_queries`` / ``eval_qrels``: a BEIR-style query set judged against the
    sources' document ids; with none, the job compares the new version with the active one on
    probe queries built from the sources (each document's title and section headings).
    ``max_regression``: how much nDCG@10 may drop before the new version is refused.
    """

    sources: list[Path] = Field(default_factory=list)
    eval_queries: Path | None = None
    eval_qrels: Path | None = None
    max_regression: float = Field(default=0.0, ge=0.0, le=1.0)


class DriftSettings(BaseModel):
    """``jobs drift``: compare a reference and a current window of the interaction log.

    Windows are the ``window_hours`` before now (current) and the ``window_hours`` before that
    (reference); ``min_samples`` per window below which no verdict is given. ``alpha``: significance
    level of every test (Holm-corrected across tests); ``permutations``: permutation-test rounds
    for the embedding MMD; ``max_samples``: newest rows read per window; ``topics``: k-means
    clusters of the query embeddings for the topic-mix test; ``seed``: permutations and k-means.
    """

    window_hours: float = Field(default=24.0, gt=0)
    min_samples: int = Field(default=30, ge=2)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    permutations: int = Field(default=500, ge=50, le=100_000)
    max_samples: int = Field(default=2000, ge=10)
    topics: int = Field(default=8, ge=2, le=50)
    seed: int = 0


class MLOpsSettings(BaseModel):
    """Tracking, registry, evaluation, training and scheduled jobs (docs/mlops.md).

    ``tracking_uri``: an MLflow tracking URI; ``None`` uses ``sqlite:///<data_dir>/mlflow.db`` with
    artefacts in ``<data_dir>/mlartifacts``. ``experiment``: the MLflow experiment of every run.
    ``llm_name`` / ``index_name``: registered-model names (``agent_llm_name``: the agent's
    adapters, from ``train llm --agent``); guards register as
    ``<guard_prefix><guard>``. ``schedules``: job name → cron expression (5 fields) for
    ``jobs scheduler``. ``eval_suite``: the suite file ``jobs loop`` gates promotions with.
    ``serve_champion``: the service serves the registry's ``champion`` LLM when one exists, and
    switches to a newly promoted one without a restart (polled every ``poll_s`` seconds).
    """

    tracking_uri: str | None = None
    experiment: str = Field(default="genai-factory", min_length=1)
    llm_name: str = Field(default="genai-llm", min_length=1)
    agent_llm_name: str = Field(default="genai-agent-llm", min_length=1)
    index_name: str = Field(default="genai-index", min_length=1)
    guard_prefix: str = Field(default="genai-guard-", min_length=1)
    serve_champion: bool = True
    poll_s: float = Field(default=10.0, gt=0)
    eval_suite: Path | None = None
    schedules: dict[JobName, str] = Field(default_factory=dict)
    #: Extra CLI arguments of a scheduled job, e.g. ``train_llm: ["--data", "train.jsonl"]``.
    job_args: dict[JobName, list[str]] = Field(default_factory=dict)
    reindex: ReindexSettings = Field(default_factory=ReindexSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)


class SageMakerSettings(BaseModel):
    """A SageMaker endpoint serving the vision model (``vision.backend: sagemaker``), and what
    ``vision deploy --target sagemaker`` creates. Credentials come from boto3's own chain."""

    endpoint_name: str | None = None
    region: str | None = None
    role_arn: str | None = None
    image_uri: str | None = None
    model_data_url: str | None = None
    instance_type: str = "ml.m5.large"
    timeout_s: float = Field(default=10.0, gt=0)


class VisionDriftSettings(BaseModel):
    """``vision loop``: served inputs (image statistics, penultimate embeddings, confidence)
    compared with the model's validation reference. ``window``: newest served inputs read;
    ``min_samples``: fewer and no verdict is given; ``alpha`` (Holm-corrected), ``permutations``
    and ``seed`` of the embedding MMD test, as in ``mlops.drift``."""

    window: int = Field(default=500, ge=10)
    min_samples: int = Field(default=50, ge=5)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    permutations: int = Field(default=500, ge=50, le=100_000)
    seed: int = 0


class VisionSettings(BaseModel):
    """The image model (docs/vision.md): what is served and how.

    ``model_name``: registered-model name; the service serves its ``champion`` (followed every
    ``mlops.poll_s`` seconds) or, when none is registered, ``model_dir`` or the bundled
    demonstration model. ``backend``: ``local`` runs the model in the process, ``sagemaker``
    forwards to ``sagemaker.endpoint_name``. ``max_batch`` / ``max_image_bytes``: request limits.
    ``log_inputs``: keep served inputs' statistics for the drift check (``<data_dir>/vision/``).
    ``train_data`` / ``val_data``: the default sets of ``vision loop`` (the fixed gate set is
    ``val_data``); ``recipe``: the training recipe YAML (``None``: the default recipe).
    """

    model_name: str = Field(default="genai-vision-pneumonia", min_length=1)
    backend: Literal["local", "sagemaker"] = "local"
    model_dir: Path | None = None
    max_batch: int = Field(default=64, ge=1, le=1024)
    max_image_bytes: int = Field(default=5_000_000, ge=1024)
    log_inputs: bool = True
    train_data: Path | None = None
    val_data: Path | None = None
    recipe: Path | None = None
    sagemaker: SageMakerSettings = Field(default_factory=SageMakerSettings)
    drift: VisionDriftSettings = Field(default_factory=VisionDriftSettings)


class Settings(BaseSettings):
    """All settings of one GenAI Factory process."""

    model_config = SettingsConfigDict(
        env_prefix="GENAI_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
    )

    data_dir: Path = Path(".genai")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    rag: RAGSettings = Field(default_factory=RAGSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    agents: AgentSettings = Field(default_factory=AgentSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    mlops: MLOpsSettings = Field(default_factory=MLOpsSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def safety_dir(self) -> Path:
        """Where trained guard artefacts are looked for first."""
        return self.safety.artefact_dir or self.data_dir / "safety"

    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def cache_dir(self) -> Path:
        """Embedding vectors cached by content hash (safe to delete)."""
        return self.data_dir / "cache"

    def agent_database(self) -> str | None:
        """The database of the SQL tools: the configured one, else the bundled shop database."""
        if self.agents.database:
            return self.agents.database
        shop = bundled_shop_db()
        return str(shop) if shop is not None else None

    def gateway_database_url(self) -> str:
        """The key store and spend ledger: the configured URL, else SQLite in the data directory."""
        return self.gateway.database_url or f"sqlite:///{self.data_dir / 'gateway.db'}"

    def interaction_database_url(self) -> str:
        """The interaction log: its own URL when set, else the gateway's database."""
        return self.observability.database_url or self.gateway_database_url()

    def mlflow_tracking_uri(self) -> str:
        """MLflow's tracking URI: the configured one, else SQLite in the data directory."""
        return self.mlops.tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    def mlflow_artifact_dir(self) -> Path:
        """Where runs' artefacts go when tracking is embedded."""
        return (self.data_dir / "mlartifacts").resolve()

    def memory_redis_url(self) -> str | None:
        """Redis for sessions: ``memory.redis_url``, else the gateway's Redis."""
        return self.memory.redis_url or self.gateway.redis_url


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping at the top level")
    return data


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides() -> dict[str, Any]:
    """Only the values the environment (and ``.env``) set, to be laid over the YAML file."""
    return Settings().model_dump(exclude_unset=True)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults < YAML file < environment < ``overrides``.

    Raises :class:`ConfigurationError` with every invalid field named, never a raw traceback.
    """
    path = config_file or os.environ.get("GENAI_CONFIG")
    try:
        if not path:
            return Settings(**overrides)
        file_data = _read_yaml(Path(path))
        merged = _deep_merge(_deep_merge(file_data, _env_overrides()), overrides)
        return Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
