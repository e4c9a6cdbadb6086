"""Settings name components only from the registered tables, checked when they load, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genai_factory.config import load_settings
from genai_factory.exceptions import ConfigurationError


def test_config_refuses_unregistered_names_and_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"llm.provider.*unknown model provider 'gpt'"):
        load_settings(llm={"provider": "gpt"})
    with pytest.raises(ConfigurationError, match="registered: embedded, qdrant"):
        load_settings(rag={"store": "faiss"})
    with pytest.raises(ConfigurationError, match="registered: auto, memory, sqlite, redis"):
        load_settings(memory={"backend": "disk"})
    with pytest.raises(ConfigurationError, match="unknown agent tool 'shell'"):
        load_settings(agents={"tools": ["shell"]})
    with pytest.raises(ConfigurationError, match="unknown guard 'magic'"):
        load_settings(safety={"routes": {"default": {"input": [{"guard": "magic"}]}}})


def test_checking_names_imports_no_backend() -> None:
    code = """
import sys
from genai_factory.config import load_settings
load_settings(
    llm={"provider": "openai_compatible", "base_url": "http://127.0.0.1:1/v1"},
    embeddings={"provider": "minilm"},
    rag={"store": "qdrant", "retrieval": {"reranker": "sentence"}},
    memory={"backend": "redis"},
    agents={"tools": ["sql_query", "knowledge_search"]},
)
heavy = ("torch", "llama_cpp", "qdrant_client", "sentence_transformers", "redis", "sklearn",
         "genai_factory.llm", "genai_factory.rag", "genai_factory.safety")
print(sorted(name for name in sys.modules if name.split(".")[0] in heavy or name in heavy))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
