"""Shipped test support: fakes and contract test mixins for code built on GenAI Factory.

``from genai_factory.testing import FakeChatModel, FakeEmbedder, VectorStoreContract``. The names
are imported on first use, so importing this package pulls in neither numpy nor pytest (the
contract mixins need pytest and pytest-asyncio). The modules hold more: ``fault_server`` (a
fault-injecting OpenAI-compatible server), ``documents`` and ``traffic`` (test data).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genai_factory.testing.contracts import VectorStoreContract
    from genai_factory.testing.fakes import FakeChatModel, FakeEmbedder

_HOMES = {
    "FakeChatModel": "genai_factory.testing.fakes",
    "FakeEmbedder": "genai_factory.testing.fakes",
    "VectorStoreContract": "genai_factory.testing.contracts",
}

__all__ = ["FakeChatModel", "FakeEmbedder", "VectorStoreContract"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
