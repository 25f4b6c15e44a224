"""Running batches again from the input Kafka kept.

``batchline replay``: as new batches, one by ID or every batch of the caller's created in a time
range (``--from``/``--to``), oldest first; each new batch ID goes to stdout, one a line, and
what replays what to stderr. ``batchline retry``: a failed batch's dead-lettered chunks, under
its own ID.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from batchline.client.calls import rate_limit_pause
from batchline.client.commands import ApiKey, Url, fail, reported, stderr_console
from batchline.client.errors import ApiResponseError, InputError
from batchline.client.http import DEFAULT_URL, BatchlineClient
from batchline.client.render import summary
from batchline.client.watch import wait_for_batch
from schemas.statuses import BatchStatus

PAGE = 1000
# Replays of a range go one after another; a key's limit on unfinished batches answers 429,
# and the next one is tried again after the Retry-After it gives, this many times at most.
MAX_RATE_LIMITED_TRIES = 120


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} {text!r} is not an ISO 8601 time (2024-01-01T00:00:00Z)"
        ) from None
    # A time without an offset is UTC, as every time Batchline shows.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def replay(
    batch_id: Annotated[
        str | None, typer.Argument(help="The batch to replay; or use --from and --to.")
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option(help="Pipeline (name or name@version); default: each original's own."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Replay your batches created at or after this time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="...and before this time (ISO 8601; UTC if bare).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until each replay finishes.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Run past batches again from the input Kafka kept, as new batches; prints their IDs."""
    ranged = since is not None or until is not None
    if (batch_id is None) == (not ranged) or (ranged and (since is None or until is None)):
        raise fail("give a BATCH_ID, or both --from and --to", 2)
    err = stderr_console()
    finals: list[dict[str, Any]] = []
    skipped = 0
    with reported(), BatchlineClient(url, api_key) as client:
        if batch_id is not None:
            originals = [batch_id]
        else:
            assert since is not None and until is not None  # noqa: S101 - checked above
            originals = created_between(client, _moment(since, "--from"), _moment(until, "--to"))
            err.print(f"{len(originals)} batches created in that range", markup=False)
        for original in originals:
            try:
                new_id = _replay_one(client, original, pipeline)
            except ApiResponseError as exc:
                if batch_id is not None or exc.status_code not in (409, 410):
                    raise
                # In a range, a batch that cannot be replayed (a producer's, input aged out)
                # is said and passed over; the others go on.
                err.print(f"batchline: skipped {original}: {exc}", markup=False)
                skipped += 1
                continue
            err.print(f"Replaying {original} as {new_id}", markup=False)
            typer.echo(new_id)
            if wait:
                final = wait_for_batch(client, new_id, err)
                err.print(summary(final), markup=False)
                finals.append(final)
    if skipped or any(final.get("status") != BatchStatus.COMPLETED for final in finals):
        raise typer.Exit(1)


def retry(
    batch_id: Annotated[str, typer.Argument(help="The failed batch.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until the batch finishes.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Run a failed batch's dead-lettered chunks again (when it failed for a reason outside its
    data); prints the batch ID."""
    err = stderr_console()
    with reported(), BatchlineClient(url, api_key) as client:
        client.retry(batch_id)
        err.print(f"Retrying the failed chunks of {batch_id}", markup=False)
        typer.echo(batch_id)
        if not wait:
            return
        final = wait_for_batch(client, batch_id, err)
    err.print(summary(final), markup=False)
    if final.get("status") != BatchStatus.COMPLETED:
        raise typer.Exit(1)


def _replay_one(client: BatchlineClient, batch_id: str, pipeline: str | None) -> str:
    for _ in range(MAX_RATE_LIMITED_TRIES):
        try:
            return str(client.replay(batch_id, pipeline)["batch_id"])
        except ApiResponseError as exc:
            pause = rate_limit_pause(exc)
            if pause is None:
                raise
            time.sleep(pause)
    return str(client.replay(batch_id, pipeline)["batch_id"])


def created_between(client: BatchlineClient, since: datetime, until: datetime) -> list[str]:
    """IDs of the caller's batches created in [since, until), oldest first."""
    found = [
        (created, str(batch["batch_id"]))
        for batch in _every_batch(client)
        if (created := _created_at(batch)) is not None and since <= created < until
    ]
    return [batch_id for _, batch_id in sorted(found)]


def _every_batch(client: BatchlineClient) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = client.batches(offset=offset, limit=PAGE)
        listed = page.get("batches") or []
        yield from listed
        offset += len(listed)
        if not listed or offset >= int(page.get("total", 0)):
            return


def _created_at(batch: dict[str, Any]) -> datetime | None:
    text = batch.get("created_at")
    return datetime.fromisoformat(text) if isinstance(text, str) else None
