"""Settings: the only module that reads the environment.

Sources, highest priority first: explicit constructor arguments, environment variables
(prefix ``GENAI_``, nested delimiter ``__``, e.g. ``GENAI_LLM__PROVIDER=openai_compatible``),
a ``.env`` file, an optional YAML file (``--config`` or ``GENAI_CONFIG``), then the defaults below,
which run everything embedded with no network and no API key.

The YAML file holds data only. Component fields are ``Literal`` names from a fixed allowlist, so a
config file can choose among registered components but can never make the process import a class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from genai_factory.exceptions import ConfigurationError

LLMProvider = Literal["llamacpp", "openai_compatible", "fake"]
EmbeddingProvider = Literal["minilm", "openai_compatible", "fake"]
#: The registered agent tools (``genai_factory.agents.registry`` builds them); config may name no other.
ToolName = Literal["sql_schema", "sql_query", "calculator", "knowledge_search"]


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
    """One model backend. ``model`` is the model id sent to the provider."""

    provider: LLMProvider = "llamacpp"
    model: str = "smollm2-135m-instruct-q4_1"
    model_path: Path | None = None
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
    provider: EmbeddingProvider = "minilm"
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(default=32, ge=1, le=4096)
    timeout_s: float = Field(default=60.0, gt=0)


class RAGSettings(BaseModel):
    knowledge_dirs: list[Path] = Field(default_factory=lambda: [bundled_docs_dir()])
    ingest_on_start: bool = True
    chunk_tokens: int = Field(default=160, ge=16, le=4096)
    chunk_overlap: int = Field(default=32, ge=0)
    top_k: int = Field(default=3, ge=1, le=50)
    source_chars: int = Field(default=600, ge=50, le=20_000)
    min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    excerpt_chars: int = Field(default=300, ge=20)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RAGSettings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self


class ServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_query_chars: int = Field(default=4000, ge=1)
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


class AgentSettings(BaseModel):
    """The agent route: its tools, its limits and the database its SQL tools read.

    ``tools`` are the tools enabled on the agent route (registered names only). ``database`` is a
    SQLite path or ``postgresql://`` URL; ``None`` means the bundled ``examples/shop.db`` when it
    exists (the SQL tools are left out when there is no database). ``action_format``: ``auto``
    uses native tool calling with ``openai_compatible`` models and JSON-schema constrained actions
    otherwise. ``auto_route``: whether ``mode=auto`` may choose the agent.
    """

    enabled: bool = True
    tools: list[ToolName] = Field(default_factory=lambda: list(get_args(ToolName)))
    max_steps: int = Field(default=5, ge=1, le=50)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    token_budget: int = Field(default=8000, ge=256)
    step_max_tokens: int = Field(default=160, ge=16, le=4096)
    tool_timeout_s: float = Field(default=10.0, gt=0, le=600)
    database: str | None = None
    sql_max_rows: int = Field(default=50, ge=1, le=10_000)
    action_format: Literal["auto", "json_schema", "native"] = "auto"
    auto_route: bool = True

    @model_validator(mode="after")
    def _tools_unique(self) -> AgentSettings:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError("agents.tools names a tool twice")
        return self


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

    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def agent_database(self) -> str | None:
        """The database of the SQL tools: the configured one, else the bundled shop database."""
        if self.agents.database:
            return self.agents.database
        shop = bundled_shop_db()
        return str(shop) if shop is not None else None

    def gateway_database_url(self) -> str:
        """The key store and spend ledger: the configured URL, else SQLite in the data directory."""
        return self.gateway.database_url or f"sqlite:///{self.data_dir / 'gateway.db'}"


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
