from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.config import load_settings
from genai_factory.exceptions import ConfigurationError, SafetyViolation
from genai_factory.safety.injection import InjectionGuard
from genai_factory.safety.pii import PIIGuard
from genai_factory.safety.registry import SafetyService

YAML = """
safety:
  reversible_redaction: true
  routes:
    default:
      input:
        - {guard: injection, action: block}
      output:
        - {guard: pii, action: redact}
    chat:
      input:
        - {guard: injection, action: warn, threshold: 0.9}
        - {guard: pii, action: block}
"""


def test_routes_come_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(YAML)
    settings = load_settings(path, data_dir=tmp_path / "data")
    service = SafetyService(settings)
    chat = service.pipeline.policy("chat")
    assert [type(g) for g in chat.input] == [InjectionGuard, PIIGuard]
    assert chat.input[0].action == "warn" and chat.input[0].threshold == 0.9  # type: ignore[attr-defined]
    assert service.pipeline.policy("rag") is service.pipeline.policy("default")
    assert service.pipeline.reversible
    with pytest.raises(SafetyViolation):
        service.pipeline.check_input("my card is 4111 1111 1111 1111", route="chat")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "safety:\n  routes:\n    default:\n      input: [{guard: eval}]\n",
            "safety.routes.default",
        ),
        (
            "safety:\n  routes:\n    default:\n      input: [{guard: pii, action: strip}]\n",
            "accepts actions",
        ),
        ("safety:\n  routes:\n    chat: {}\n", "default"),
        ("safety:\n  routes:\n    default: {}\n    admin: {}\n", "safety.routes"),
    ],
)
def test_only_registered_guards_and_actions_are_accepted(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)
    assert message in caught.value.message


async def test_service_loads_artefacts_and_versions(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data")
    service = SafetyService(settings)
    assert service.resources.injection is None  # rules only until loaded
    await service.load()
    versions = service.describe()["artefacts"]
    assert all(versions.values())
    guard = service.pipeline.policy("default").input[0]
    assert isinstance(guard, InjectionGuard) and guard.model is not None
    assert service.redactor()("write to jane@example.com") == "write to <EMAIL_ADDRESS>"
