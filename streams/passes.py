"""Periodic jobs that never overlap themselves.

Faust's timers await their callback, and warn that the timer "is overlapping" whenever a
callback outlasts the interval: a reconcile pass slowed by a busy broker did so every two
seconds. Here a timer only starts its job's pass, in a task of its own, and returns at once;
while that pass still runs, the next tick starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

log = logging.getLogger(__name__)


class OnePassAtATime:
    """The running pass of each named job, started by :meth:`start` and ended by :meth:`stop`."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, job: Callable[[], Awaitable[None]]) -> bool:
        """Starts a pass of ``job`` unless its previous one still runs; True when it started."""
        running = self._running.get(name)
        if running is not None and not running.done():
            return False
        task = asyncio.ensure_future(job())
        task.add_done_callback(partial(_log_failure, name))
        self._running[name] = task
        return True

    def running(self, name: str) -> bool:
        task = self._running.get(name)
        return task is not None and not task.done()

    async def stop(self) -> None:
        """Cancels every pass still running and waits until each has ended."""
        tasks = list(self._running.values())
        self._running.clear()
        for task in tasks:
            task.cancel()
        # Failures were logged as each pass ended (_log_failure).
        await asyncio.gather(*tasks, return_exceptions=True)


def _log_failure(name: str, task: asyncio.Task[None]) -> None:
    # By type only, as every log line here: an exception's message may quote input.
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("periodic job failed", extra={"job": name, "error_type": type(error).__name__})
