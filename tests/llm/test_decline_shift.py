"""The calibrated decline shift: stored beside an adapter, applied at the first answer token only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genai_factory.config import Settings
from genai_factory.llm.llamacpp import (
    SHIPPED_ADAPTER,
    FirstTokenShift,
    LlamaCppModel,
    stored_decline_shift,
)


def test_the_shift_applies_to_the_first_position_only() -> None:
    shift = FirstTokenShift(token=2, shift=-1.5)
    first = shift(np.array([1, 2, 3]), np.zeros(5, dtype=np.float32))
    assert first.tolist() == [0.0, 0.0, -1.5, 0.0, 0.0]
    later = shift(np.array([1, 2, 3, 4]), np.zeros(5, dtype=np.float32))
    assert later.tolist() == [0.0] * 5


def test_stored_shift_is_read_beside_the_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    assert stored_decline_shift(adapter) == 0.0  # no JSON file
    (tmp_path / "a.json").write_text(json.dumps({"decline_shift": -1.25}))
    assert stored_decline_shift(adapter) == -1.25
    (tmp_path / "a.json").write_text("{not json")
    assert stored_decline_shift(adapter) == 0.0
    (tmp_path / "a.json").write_text(json.dumps({"examples": 3}))
    assert stored_decline_shift(adapter) == 0.0
    assert stored_decline_shift(None) == 0.0


def test_the_setting_overrides_the_stored_shift(tmp_path: Path) -> None:
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    (tmp_path / "a.json").write_text(json.dumps({"decline_shift": -2.0}))
    assert LlamaCppModel(adapter_path=adapter).decline_shift == -2.0
    assert LlamaCppModel(adapter_path=adapter, decline_shift=0.0).decline_shift == 0.0
    settings = Settings(_env_file=None, llm={"adapter": str(adapter), "decline_shift": 0.5})  # type: ignore[call-arg]
    assert LlamaCppModel.from_settings(settings.llm, None).decline_shift == 0.5
    assert LlamaCppModel().decline_shift == 0.0  # no adapter: nothing to calibrate


def test_the_shipped_adapter_carries_its_shift() -> None:
    stored = json.loads(SHIPPED_ADAPTER.with_suffix(".json").read_text(encoding="utf-8"))
    assert LlamaCppModel(adapter_path=SHIPPED_ADAPTER).decline_shift == stored.get(
        "decline_shift", 0.0
    )


def test_out_of_range_shift_is_refused() -> None:
    with pytest.raises(ValueError, match="decline_shift"):
        Settings(_env_file=None, llm={"decline_shift": 50})  # type: ignore[call-arg]
