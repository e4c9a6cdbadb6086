"""Session history: the ``SessionStore`` protocol and its backends (process, SQLite, Redis)."""

from genai_factory.memory.inprocess import InMemoryHistory
from genai_factory.memory.protocol import SessionInfo, SessionStore, check_owner

__all__ = ["InMemoryHistory", "SessionInfo", "SessionStore", "check_owner"]
