"""LoRA adapters as models: which adapter a setting names, what llama.cpp is given, and registry
versions that are adapters on a recorded base (no model is run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import ConfigurationError, InvalidRequestError
from genai_factory.llm import llamacpp
from genai_factory.llm.llamacpp import (
    SMOLLM2_FILE,
    LlamaCppModel,
    bundled_gguf_path,
    resolve_adapter,
    shipped_adapter_path,
)
from genai_factory.llm.registry import get_model


def test_the_shipped_adapter_is_in_the_package() -> None:
    path = shipped_adapter_path()
    assert path is not None and path.stat().st_size < 10_000_000
    from genai_factory.mlops.training.adapter_export import read_adapter_alpha

    assert read_adapter_alpha(path) is not None  # a LoRA adapter in llama.cpp's format


def test_adapter_setting_names_a_file_or_nothing(tmp_path: Path) -> None:
    shipped = shipped_adapter_path()
    assert resolve_adapter("default", None) == shipped
    assert resolve_adapter("default", bundled_gguf_path()) == shipped
    assert resolve_adapter("default", tmp_path / "other.gguf") is None  # fits the bundled base only
    assert resolve_adapter("none", None) is None and resolve_adapter("", None) is None
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF")
    assert resolve_adapter(str(mine), tmp_path / "other.gguf") == mine
    with pytest.raises(ConfigurationError, match="adapter file not found"):
        resolve_adapter(str(tmp_path / "absent.gguf"), None)


def test_the_setting_is_on_by_default_and_off_with_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().llm.adapter == "default"
    monkeypatch.setenv("GENAI_LLM__ADAPTER", "none")
    assert load_settings().llm.adapter == "none"


def test_llama_cpp_gets_the_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    class FakeLlama:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

    monkeypatch.setattr("llama_cpp.Llama", FakeLlama)
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    model = LlamaCppModel(adapter_path=adapter, adapter_scale=0.5, adapter_merge=False)
    model._load_blocking()
    assert seen["lora_path"] == str(adapter) and seen["lora_scale"] == 0.5
    assert seen["model_path"].endswith(SMOLLM2_FILE)
    with pytest.raises(ConfigurationError, match="adapter file not found"):
        LlamaCppModel(adapter_path=tmp_path / "absent.gguf")


def test_get_model_applies_the_setting() -> None:
    default = get_model("llamacpp")
    assert isinstance(default, LlamaCppModel)
    assert default.adapter_path == shipped_adapter_path()
    bare = get_model("llamacpp", adapter="none")
    assert isinstance(bare, LlamaCppModel) and bare.adapter_path is None


def test_registered_adapter_resolves_with_its_base(
    fake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_factory.mlops.champion import lookup_champion
    from genai_factory.mlops.registry import (
        ADAPTER_KIND,
        BASE_REF_TAG,
        KIND_TAG,
        ModelRegistry,
        resolve_llm,
        resolve_llm_files,
    )

    registry = ModelRegistry(fake_settings)
    name = fake_settings.mlops.llm_name
    merged = tmp_path / "model.gguf"
    merged.write_bytes(b"merged")
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"adapter")
    registry.register(name, merged)  # v1: a merged model
    tags = {KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: "base"}
    registry.register(name, adapter, tags=tags)  # v2: an adapter on the bundled model
    registry.register(name, adapter, tags={KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: "1"})  # v3

    on_base = resolve_llm_files(fake_settings, "2")
    assert on_base.model is None and on_base.adapter is not None
    assert on_base.adapter.read_bytes() == b"adapter"
    on_merged = resolve_llm_files(fake_settings, "challenger")  # v3
    assert on_merged.model is not None and on_merged.model.read_bytes() == b"merged"
    assert resolve_llm_files(fake_settings, "1").adapter is None
    with pytest.raises(InvalidRequestError, match="LoRA adapter"):
        resolve_llm(fake_settings, "2")

    registry.promote(name, 3)
    champion = lookup_champion(fake_settings)
    assert champion.version == "3" and champion.path == on_merged.model
    assert champion.adapter is not None and champion.adapter.read_bytes() == b"adapter"


def test_default_means_the_configured_model_and_adapter(fake_settings: Settings) -> None:
    from genai_factory.mlops.champion import lookup_champion
    from genai_factory.mlops.registry import resolve_llm_files

    files = resolve_llm_files(fake_settings, "default")
    assert files.model is None and files.adapter == shipped_adapter_path()
    assert resolve_llm_files(fake_settings, "base").adapter is None
    nothing_promoted = lookup_champion(fake_settings)
    assert nothing_promoted.version == "base" and nothing_promoted.adapter == files.adapter
    off = fake_settings.model_copy(
        update={"llm": fake_settings.llm.model_copy(update={"adapter": "none"})}
    )
    assert resolve_llm_files(off, "default").adapter is None


def test_module_exposes_the_shipped_path() -> None:
    assert llamacpp.SHIPPED_ADAPTER.name.endswith(".gguf")
