"""Per-key rate limits: a weighted sliding-window log, in process or in Redis.

Algorithm: every admitted request is logged with its time and weight (1 for requests per minute,
its worst-case tokens for tokens per minute). A new request of weight ``w`` is admitted when the
weights logged in the last ``window`` seconds plus ``w`` stay within ``limit``. So the limit holds
exactly over *every* window of that length, with no burst at window edges (a fixed window allows
up to twice the limit across an edge; GCRA allows ``limit`` plus one per emission interval).
A refusal says when enough old entries expire for the request to fit: that is ``Retry-After``.
Token entries are written with the worst case and corrected to the real usage after the call
(:meth:`RateLimiter.adjust`). Memory is one entry per request in the window.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Admission:
    """The answer to one request. ``retry_after_s`` is ``inf`` when ``weight > limit``."""

    allowed: bool
    retry_after_s: float = 0.0
    ticket: str = ""


class RateLimiter(Protocol):
    """Sliding-window limits keyed by ``bucket`` (e.g. ``<key id>:rpm``).

    Contract: ``acquire`` admits and logs ``weight`` atomically, also across processes for a
    shared backend; it never logs a refused request. ``adjust`` changes the weight of an admitted
    entry (by its ticket) and does nothing once the entry has left the window.
    """

    async def acquire(self, bucket: str, weight: int, limit: int, window_s: float) -> Admission: ...

    async def adjust(self, bucket: str, ticket: str, weight: int) -> None: ...

    async def aclose(self) -> None: ...


def retry_after(
    entries: Iterable[tuple[float, int]],
    used: int,
    weight: int,
    limit: int,
    window_s: float,
    now: float,
) -> float:
    """Seconds until entries ``(time, weight)``, oldest first, expire enough for ``weight`` to fit."""
    if weight > limit:
        return math.inf
    excess = used + weight - limit
    freed = 0
    for stamp, entry_weight in entries:
        freed += entry_weight
        if freed >= excess:
            return max(0.0, stamp + window_s - now)
    return window_s


@dataclass
class _Entry:
    stamp: float
    weight: int
    ticket: str


@dataclass
class _Log:
    entries: deque[_Entry] = field(default_factory=deque)
    used: int = 0
    #: The entries by ticket, so ``adjust`` does not scan the window (thousands of entries).
    by_ticket: dict[str, _Entry] = field(default_factory=dict)

    def expire(self, horizon: float) -> None:
        while self.entries and self.entries[0].stamp <= horizon:
            gone = self.entries.popleft()
            self.used -= gone.weight
            self.by_ticket.pop(gone.ticket, None)


class InProcessRateLimiter:
    """The sliding-window log in this process's memory (one process; use Redis for replicas).

    Each call runs without awaiting in between, so it is atomic on the event loop.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        # Tickets only need to be unique in this process: a counter is cheaper than a UUID.
        self._tickets = itertools.count(1)

    async def acquire(self, bucket: str, weight: int, limit: int, window_s: float) -> Admission:
        now = self._clock()
        log = self._logs.setdefault(bucket, _Log())
        log.expire(now - window_s)
        if log.used + weight > limit:
            pairs = ((e.stamp, e.weight) for e in log.entries)
            return Admission(False, retry_after(pairs, log.used, weight, limit, window_s, now))
        ticket = str(next(self._tickets))
        entry = _Entry(now, weight, ticket)
        log.entries.append(entry)
        log.by_ticket[ticket] = entry
        log.used += weight
        return Admission(True, 0.0, ticket)

    async def adjust(self, bucket: str, ticket: str, weight: int) -> None:
        log = self._logs.get(bucket)
        entry = log.by_ticket.get(ticket) if log is not None else None
        if log is None or entry is None:
            return
        log.used += weight - entry.weight
        entry.weight = weight

    async def aclose(self) -> None:
        self._logs.clear()
