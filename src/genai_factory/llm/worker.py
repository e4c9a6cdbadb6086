"""One dedicated worker thread for blocking model computations.

On a small machine two model computations side by side are far slower than the same two one after
the other (llama.cpp on 2 cores drops from ~135 to below 1 token/s), so every blocking call of a
model goes through one :class:`ModelWorker`: a single thread, a FIFO of jobs, and an event loop that
never blocks. Several models may share one worker to serialise all of them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class ModelWorker:
    """Runs blocking callables one at a time on a single named thread."""

    def __init__(self, name: str = "model-worker") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def iterate(self, make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        """Drive a blocking iterator on the worker thread, yielding its items to the event loop.

        Closing the returned async generator early sets a stop flag that the worker checks between
        items, so an abandoned stream stops computing after at most one more item.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def pump() -> None:
            try:
                for item in make_iter():
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                    if stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, _Failure(exc))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        future = loop.run_in_executor(self._executor, pump)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    raise item.exc
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.shield(future)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=False, cancel_futures=True)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
