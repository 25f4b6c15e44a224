"""``submit --wait``: the client's wait, shown as a live progress bar."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from batchline.client.errors import WaitTimedOut
from batchline.client.http import BatchlineClient
from batchline.client.render import done_items
from schemas.statuses import BatchStatus

__all__ = ["WaitTimedOut", "wait_for_batch"]


def wait_for_batch(
    client: BatchlineClient,
    batch_id: str,
    console: Console,
    *,
    timeout_s: float | None = None,
    interval_s: float | None = None,
) -> dict[str, Any]:
    """Polls until the batch is completed, cancelled or failed; returns its last status.

    Raises WaitTimedOut, carrying the last status, when ``timeout_s`` runs out first.
    """
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
        task = progress.add_task(
            batch_id, total=100, state=BatchStatus.QUEUED.value, done=0, items="?"
        )

        def show(status: dict[str, Any]) -> None:
            progress.update(
                task,
                completed=int(status.get("progress", 0)),
                state=str(status.get("status")),
                done=done_items(status),
                items=status.get("total", "?"),
            )

        options: dict[str, Any] = {} if interval_s is None else {"interval_s": interval_s}
        return client.wait(batch_id, on_progress=show, timeout_s=timeout_s, **options)
