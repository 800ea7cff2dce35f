"""Synchronous ``generate`` over asynchronous clients (the OpenAI SDK, Inspect's models).

Both API backends keep one asyncio loop on a daemon thread, send a batch as concurrent
coroutines there, and hand each finished request back to the calling thread as it arrives,
so the caller commits results one by one (a killed run loses only what was in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..budget import NOT_SENT
from ..budget import active as active_budget
from ..records import Completion
from .base import ResultCallback

# Puts (index, completion) on the queue as each request of the batch finishes.
BatchRunner = Callable[[queue.SimpleQueue], Coroutine[Any, Any, None]]


class LoopThread:
    """An event loop running on its own daemon thread, (re)started on demand."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def ensure(self) -> tuple[asyncio.AbstractEventLoop, bool]:
        """The running loop, and whether it was just started (clients bound to an older
        loop must then be recreated)."""
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                                name=self.name)
                self._thread.start()
                return self._loop, True
            return self._loop, False

    def close(self, last: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Stop the loop; ``last()`` (e.g. closing a client) runs on it first, and its failure
        never masks the caller's own error."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        if last is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(Exception):  # closing is best effort
                asyncio.run_coroutine_threadsafe(last(), loop).result(timeout=10)  # type: ignore[arg-type]
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()


def run_batch(loop: asyncio.AbstractEventLoop, n: int, runner: BatchRunner,
              on_result: ResultCallback | None) -> list[Completion]:
    """Run ``runner`` on ``loop`` and collect its ``n`` completions in request order, calling
    ``on_result`` for each as it arrives (never for a request the budget kept back). The
    budget's error is raised after every answer that did arrive was handed over."""
    done: queue.SimpleQueue[tuple[int, Completion]] = queue.SimpleQueue()
    fut = asyncio.run_coroutine_threadsafe(runner(done), loop)
    out: list[Completion | None] = [None] * n
    received = 0
    try:
        while received < n:
            try:
                i, c = done.get(timeout=0.2)
            except queue.Empty:
                if fut.done() and fut.exception() is not None:
                    raise fut.exception() from None  # type: ignore[misc]
                continue
            out[i] = c
            received += 1
            if on_result is not None and c.error != NOT_SENT:
                on_result(i, c)
    except BaseException:
        fut.cancel()  # the store failed or Ctrl-C: stop sending requests
        raise
    fut.result()
    budget = active_budget()
    if budget is not None and any(c is not None and c.error == NOT_SENT for c in out):
        raise budget.error()
    return [c for c in out if c is not None]


async def within_budget(worst_cost: Callable[[], float],
                        call: Callable[[], Awaitable[Completion]]) -> Completion:
    """Send one request unless the active ``--max-usd`` budget cannot cover its worst case.

    The reservation is made as the request goes out (not when it is queued), so the check sees
    every request in flight; a finished one settles at its real cost."""
    budget = active_budget()
    if budget is None:
        return await call()
    worst = worst_cost()
    if not budget.try_reserve(worst):
        return Completion(error=NOT_SENT)
    c = await call()
    budget.settle(worst, c.usage.cost_usd)
    return c
