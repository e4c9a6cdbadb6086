"""``SingleFlight``: concurrent callers asking for the same thing share one lookup.

A burst of requests with one key (or the first requests of a budget period) would otherwise send
one identical database query each; with it, the first caller queries and the others await its
answer. Nothing is cached after the lookup finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one ``load()`` per name at a time; concurrent callers get the same result."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    async def run(self, name: str, load: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(name)
        if running is None:
            running = asyncio.ensure_future(load())
            self._running[name] = running
            running.add_done_callback(lambda _: self._running.pop(name, None))
        return await asyncio.shield(running)
