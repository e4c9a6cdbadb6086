"""``genai_factory.testing`` exports its fakes and contract mixins, without importing them early."""

from __future__ import annotations

import subprocess
import sys

import genai_factory.testing as testing
from genai_factory.testing.contracts import VectorStoreContract as Contract
from genai_factory.testing.fakes import FakeChatModel as Chat
from genai_factory.testing.fakes import FakeEmbedder as Embedder


def test_the_package_exports_the_fakes_and_the_contract() -> None:
    from genai_factory.testing import FakeChatModel, FakeEmbedder, VectorStoreContract

    assert (FakeChatModel, FakeEmbedder, VectorStoreContract) == (Chat, Embedder, Contract)
    assert sorted(testing.__all__) == ["FakeChatModel", "FakeEmbedder", "VectorStoreContract"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(testing, "FakeEverything")


def test_importing_the_package_imports_neither_pytest_nor_numpy() -> None:
    code = (
        "import sys, genai_factory.testing; "
        "print(any(m in sys.modules for m in ('pytest', 'numpy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
