"""How batches look on a terminal: the summary line and the rich tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from schemas.statuses import BatchStatus

STATUS_STYLES: dict[str, str] = {
    BatchStatus.QUEUED: "cyan",
    BatchStatus.PROCESSING: "yellow",
    BatchStatus.COMPLETED: "green",
    BatchStatus.CANCELLED: "magenta",
    BatchStatus.FAILED: "red",
}


def seconds(value: Any) -> str:
    if value is None:
        return "-"
    # jsonio reads 5.2 as Decimal("5.2"); formatting it needs no float.
    return f"{Decimal(str(value)):.2f} s"


def timestamp(value: Any) -> str:
    """ISO 8601 with its zone, to the second: ``2024-01-01T00:00:00Z`` for UTC (the API's)."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


def done_items(status: dict[str, Any]) -> int:
    """Items the workers are through with: kept (processed) or dropped (filtered, invalid)."""
    return int(status.get("processed", 0)) + int(status.get("filtered", 0))


def summary(status: dict[str, Any]) -> str:
    """``batch_1 completed: 10000 processed, 0 filtered in 3.21 s``, plus why, if it failed."""
    counts = f"{status.get('processed', 0)} processed, {status.get('filtered', 0)} filtered"
    if status.get("invalid"):
        counts = f"{counts} ({status['invalid']} invalid)"
    text = f"{status.get('batch_id')} {status.get('status')}: {counts}"
    if status.get("duration") is not None:
        text = f"{text} in {seconds(status['duration'])}"
    if status.get("reason"):
        text = f"{text}; {' '.join(str(status['reason']).split())}"
    return text


def _styled(state: Any) -> Text:
    return Text(str(state), style=STATUS_STYLES.get(str(state), "default"))


def _plain(value: Any) -> Text:
    # Text, not a str: a value is shown as it is, never read as rich markup.
    return Text(str(value))


def status_table(status: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("batch", _plain(status.get("batch_id")))
    table.add_row("status", _styled(status.get("status")))
    table.add_row("progress", f"{status.get('progress', 0)}%")
    table.add_row("items", f"{done_items(status)}/{status.get('total', '?')} done")
    table.add_row("processed", str(status.get("processed", 0)))
    table.add_row("filtered", str(status.get("filtered", 0)))
    table.add_row("invalid", str(status.get("invalid", 0)))
    table.add_row("pipeline", _plain(status.get("pipeline", "-")))
    table.add_row("duration", seconds(status.get("duration")))
    for field in ("created_at", "started_at", "completed_at"):
        table.add_row(field.replace("_", " "), timestamp(status.get(field)))
    if status.get("reason"):
        table.add_row("reason", _plain(status["reason"]))
    for key, value in sorted((status.get("metadata") or {}).items()):
        table.add_row(Text(f"metadata.{key}"), _plain(value))
    return table


def batches_table(batches: list[dict[str, Any]]) -> Table:
    # The id, state, progress and time in full on an 80-column terminal; counts are in `status`.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=30)
    table.add_column("status", no_wrap=True, min_width=10)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("created_at", no_wrap=True, min_width=20)
    for batch in batches:
        table.add_row(
            _plain(batch.get("batch_id")),
            _styled(batch.get("status")),
            f"{batch.get('progress', 0)}%",
            timestamp(batch.get("created_at")),
        )
    return table


def errors_table(errors: list[dict[str, Any]]) -> Table:
    """Rows (from 0, as the API counts them), fields and reasons: never a value."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("row", justify="right", no_wrap=True)
    table.add_column("field", overflow="fold")
    table.add_column("reason", overflow="fold")
    for error in errors:
        table.add_row(
            str(error.get("row")), _plain(error.get("field")), _plain(error.get("reason"))
        )
    return table


def pipelines_table(pipelines: list[dict[str, Any]]) -> Table:
    """A row per version: ref, newest or not, digest (first 12), output fields."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("ref", no_wrap=True)
    table.add_column("newest", no_wrap=True)
    table.add_column("digest", no_wrap=True)
    table.add_column("output fields")
    for pipeline in pipelines:
        for version in pipeline.get("versions") or []:
            table.add_row(
                _plain(version.get("ref")),
                "yes" if version.get("ref") == pipeline.get("newest") else "",
                _plain(str(version.get("digest", ""))[:12]),
                _plain(", ".join(str(name) for name in version.get("output_fields") or [])),
            )
    return table
