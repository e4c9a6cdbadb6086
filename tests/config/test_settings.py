from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.config import Settings, bundled_docs_dir, load_settings
from genai_factory.exceptions import ConfigurationError


def test_defaults_run_embedded_without_configuration() -> None:
    settings = load_settings()
    assert settings.llm.provider == "llamacpp"
    assert settings.embeddings.provider == "minilm"
    assert settings.service.host == "127.0.0.1"
    assert settings.rag.knowledge_dirs == [bundled_docs_dir()]
    assert (bundled_docs_dir() / "index.md").is_file()


def test_environment_uses_prefix_and_nested_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_LLM__PROVIDER", "openai_compatible")
    monkeypatch.setenv("GENAI_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GENAI_LLM__API_KEY", "sk-secret")
    monkeypatch.setenv("GENAI_RAG__TOP_K", "7")
    settings = load_settings()
    assert settings.llm.provider == "openai_compatible"
    assert settings.llm.resolved_api_key() == "sk-secret"
    assert "sk-secret" not in repr(settings)
    assert settings.rag.top_k == 7


def test_yaml_file_is_overridden_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "genai.yaml"
    config.write_text(
        "llm:\n  max_tokens: 99\n  fallbacks:\n    - provider: llamacpp\nrag:\n  top_k: 5\n"
    )
    monkeypatch.setenv("GENAI_RAG__TOP_K", "2")
    settings = load_settings(config)
    assert settings.llm.max_tokens == 99
    assert settings.llm.fallbacks[0].provider == "llamacpp"
    assert settings.rag.top_k == 2


def test_config_file_from_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "genai.yaml"
    config.write_text("service:\n  port: 9100\n")
    monkeypatch.setenv("GENAI_CONFIG", str(config))
    assert load_settings().service.port == 9100


def test_yaml_may_only_name_registered_components(tmp_path: Path) -> None:
    config = tmp_path / "evil.yaml"
    config.write_text("llm:\n  provider: os.system\n")
    with pytest.raises(ConfigurationError, match=r"llm\.provider"):
        load_settings(config)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("lmm:\n  provider: fake\n")
    with pytest.raises(ConfigurationError, match="lmm"):
        load_settings(config)


@pytest.mark.parametrize(
    ("content", "message"),
    [("llm: [unclosed", "not valid YAML"), ("- a\n- b\n", "mapping")],
)
def test_broken_yaml_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(config)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "absent.yaml")


def test_remote_model_needs_base_url() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        load_settings(llm={"provider": "openai_compatible"})


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ConfigurationError, match="chunk_overlap"):
        load_settings(rag={"chunk_tokens": 32, "chunk_overlap": 32})


def test_index_dir_is_under_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).index_dir() == tmp_path / "index"
