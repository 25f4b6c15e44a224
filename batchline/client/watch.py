"""``submit --wait``: poll the batch status and show it as a live progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from batchline.client.errors import ApiResponseError
from batchline.client.http import BatchlineClient
from batchline.client.render import FINISHED, done_items

POLL_INTERVAL_S = 0.5
# When a 429 carries no usable Retry-After.
RATE_LIMITED_PAUSE_S = 5.0


class WaitTimedOut(Exception):
    """The batch was still unfinished when the caller's time ran out."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(str(status.get("status")))
        self.status = status


def wait_for_batch(
    client: BatchlineClient,
    batch_id: str,
    console: Console,
    *,
    timeout_s: float | None = None,
    interval_s: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Poll until the batch is completed, cancelled or failed; return its last status.

    Raises WaitTimedOut, carrying the last status, when ``timeout_s`` runs out first.
    """
    pause = sleep or time.sleep
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    progress = Progress(
        TextColumn("{task.description}"),
        TextColumn("{task.fields[state]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[done]}/{task.fields[items]} items"),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    )
    with progress:
        task = progress.add_task(batch_id, total=100, state="queued", done=0, items="?")
        while True:
            status = _poll(client, batch_id, pause, deadline)
            progress.update(
                task,
                completed=int(status.get("progress", 0)),
                state=str(status.get("status")),
                done=done_items(status),
                items=status.get("total", "?"),
            )
            if status.get("status") in FINISHED:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(status)
            pause(POLL_INTERVAL_S if interval_s is None else interval_s)


def _poll(
    client: BatchlineClient,
    batch_id: str,
    sleep: Callable[[float], None],
    deadline: float | None,
) -> dict[str, Any]:
    while True:
        try:
            return client.status(batch_id)
        except ApiResponseError as exc:
            # Other scripts on the same key may use up the request rate: wait, do not give up,
            # unless the caller's time runs out first.
            if exc.status_code != 429:
                raise
            pause = exc.retry_after_s or RATE_LIMITED_PAUSE_S
            if deadline is not None and time.monotonic() + pause > deadline:
                raise WaitTimedOut({}) from None  # no status read: rate limited
            sleep(pause)
