"""The client commands: submit, status, results, cancel, batches.

Standard output carries what a script wants (a batch id, JSON, NDJSON results); everything for
people (progress, summaries, errors) goes to standard error. Any failure is one line,
``batchline: ...``, and exit status 1 (2 when the server cannot be reached at all).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from batchline.client.errors import ClientError
from batchline.client.http import DEFAULT_URL, BatchlineClient
from batchline.client.inputs import STDIN, InputFormat, read_items
from batchline.client.render import batches_table, errors_table, status_table, summary
from batchline.client.watch import WaitTimedOut, wait_for_batch
from schemas import jsonio
from schemas.http import MAX_ITEMS
from schemas.statuses import BatchStatus

INTERRUPTED_EXIT = 130
TIMED_OUT_EXIT = 124  # as timeout(1) answers
# Piped tables are not cut to 80 columns: a batch id alone is 30 characters.
PIPED_TABLE_WIDTH = 160

Url = Annotated[
    str,
    typer.Option("--url", envvar="BATCHLINE_URL", help="Base URL of the Batchline API."),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="BATCHLINE_API_KEY",
        help="Your API key (sent as X-API-Key; never printed).",
        show_default=False,
    ),
]
BatchId = Annotated[str, typer.Argument(help="The batch id that submit printed.")]


class OnInvalid(StrEnum):
    reject = "reject"
    skip = "skip"


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPED_TABLE_WIDTH
    return console


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"batchline: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Turns every client failure into its one line on stderr and its exit status."""
    try:
        yield
    except ClientError as exc:
        raise fail(str(exc), exc.exit_code) from None


def submit(
    file: Annotated[
        str, typer.Argument(help="A .json array, .ndjson/.jsonl or .csv file; - reads stdin.")
    ],
    pipeline: Annotated[str, typer.Option(help="Pipeline: name or name@version.")] = "default",
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_ITEMS, help="Items per chunk message.")
    ] = 100,
    on_invalid: Annotated[
        OnInvalid | None,
        typer.Option(
            help="reject: refuse the batch; skip: drop invalid items. Default: the pipeline's."
        ),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="Format of FILE; needed for stdin, else from the suffix."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until the batch finishes.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="With --wait: give up waiting after this many seconds (exit 124); "
            "the batch goes on.",
            show_default=False,
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Submit a file of items as one batch; prints the batch id (last line of stdout)."""
    err = stderr_console()
    if timeout is not None and not wait:
        raise fail("--timeout goes with --wait", 2)
    with reported():
        items = read_items(file, input_format, sys.stdin.buffer if file == STDIN else None)
        with BatchlineClient(url, api_key) as client:
            accepted = client.submit(
                items,
                batch_size=batch_size,
                pipeline=pipeline,
                on_invalid=on_invalid.value if on_invalid else None,
            )
            batch_id = str(accepted["batch_id"])
            noun = "item" if len(items) == 1 else "items"
            err.print(f"Submitted {len(items)} {noun} as {batch_id}", markup=False)
            typer.echo(batch_id)
            if not wait:
                return
            try:
                final = wait_for_batch(client, batch_id, err, timeout_s=timeout)
            except WaitTimedOut as exc:
                state = exc.status.get("status")
                now = f"is {state} and " if state else ""
                raise fail(
                    f"stopped waiting after {timeout:g} s; {batch_id} {now}goes on on the server",
                    TIMED_OUT_EXIT,
                ) from None
            except KeyboardInterrupt:
                raise fail(
                    f"stopped waiting; {batch_id} goes on on the server "
                    f"(`batchline cancel {batch_id}` stops it)",
                    INTERRUPTED_EXIT,
                ) from None
    err.print(summary(final), markup=False)
    if final.get("status") != BatchStatus.COMPLETED:
        raise typer.Exit(1)


def status(
    batch_id: BatchId,
    table: Annotated[bool, typer.Option("--table", help="A table instead of JSON.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Print a batch's status as JSON (or a table)."""
    with reported(), BatchlineClient(url, api_key) as client:
        body = client.status(batch_id)
    if table:
        stdout_console().print(status_table(body))
    else:
        typer.echo(jsonio.dumps_str(body))


def results(
    batch_id: BatchId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the NDJSON here instead of to stdout."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Stream a batch's results as NDJSON, one result per line, in item order."""
    with reported(), BatchlineClient(url, api_key) as client:
        if output is None:
            _results_to_stdout(client, batch_id)
            return
        lines = _results_to_file(client, batch_id, output)
    stderr_console().print(f"Wrote {lines} results to {output}", markup=False)


def _results_to_stdout(client: BatchlineClient, batch_id: str) -> None:
    out = sys.stdout.buffer
    try:
        with client.results(batch_id) as results:
            for chunk in results.chunks:
                out.write(chunk)
        out.flush()
        _say_if_partial(results.partial, batch_id)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(1) from None


def _results_to_file(client: BatchlineClient, batch_id: str, output: Path) -> int:
    # Written beside the target and renamed at the end: a broken stream leaves no half file.
    partial = output.with_name(f".{output.name}.part")
    lines = 0
    try:
        with client.results(batch_id) as results, partial.open("wb") as out:
            for chunk in results.chunks:
                out.write(chunk)
                lines += chunk.count(b"\n")
        partial.replace(output)
        _say_if_partial(results.partial, batch_id)
    except OSError as exc:
        raise ClientError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return lines


def _say_if_partial(partial: bool, batch_id: str) -> None:
    if partial:
        stderr_console().print(
            f"{batch_id} has not completed (it still runs, or was cancelled or failed): "
            "these results are partial",
            markup=False,
        )


def cancel(batch_id: BatchId, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Cancel a queued or processing batch; prints the server's answer."""
    with reported(), BatchlineClient(url, api_key) as client:
        body = client.cancel(batch_id)
    typer.echo(str(body.get("message", body.get("status"))))


def batches(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many newest.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON page instead.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List your batches, newest first."""
    with reported(), BatchlineClient(url, api_key) as client:
        page = client.batches(offset=offset, limit=limit)
    if as_json:
        typer.echo(jsonio.dumps_str(page))
        return
    listed = page.get("batches") or []
    stdout_console().print(batches_table(listed))
    total = page.get("total", len(listed))
    if total > offset + len(listed):
        stderr_console().print(
            f"{len(listed)} of {total}; see more with --offset {offset + len(listed)}"
        )


def errors(
    batch_id: BatchId,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line instead of a table.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List the records a batch dropped as invalid (on_invalid=skip): row, field, reason."""
    with reported(), BatchlineClient(url, api_key) as client:
        found = list(client.iter_errors(batch_id))
    if as_json:
        for error in found:
            typer.echo(jsonio.dumps_str(error))
    elif found:
        stdout_console().print(errors_table(found))
    else:
        stderr_console().print(f"{batch_id} dropped no records as invalid", markup=False)


def register_client_commands(app: typer.Typer) -> None:
    for command in (submit, status, results, errors, cancel, batches):
        app.command()(command)
