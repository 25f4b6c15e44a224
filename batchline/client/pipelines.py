"""`batchline pipelines list|show|validate`: what the API serves, and checking a spec file.

As the other client commands: results on standard output, failures in one line on standard
error. ``validate`` exits 1 when the spec is invalid, so a deploy script can stop on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from batchline.client.commands import ApiKey, Url, reported, stderr_console, stdout_console
from batchline.client.errors import InputError
from batchline.client.http import DEFAULT_URL, BatchlineClient
from batchline.client.inputs import read_items
from batchline.client.render import pipelines_table
from schemas import jsonio

pipelines_app = typer.Typer(
    help="List the API's pipelines, show one, check a spec file.", no_args_is_help=True
)
AsJson = Annotated[bool, typer.Option("--json", help="The API's JSON instead of a table.")]


@pipelines_app.command("list")
def list_pipelines(as_json: AsJson = False, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Every pipeline the API serves: versions, digests, output fields."""
    with reported(), BatchlineClient(url, api_key) as client:
        listed = client.pipelines()
    if as_json:
        typer.echo(jsonio.dumps_str(listed))
    else:
        stdout_console().print(pipelines_table(listed.get("pipelines") or []))


@pipelines_app.command("show")
def show_pipeline(
    ref: Annotated[str, typer.Argument(help="name@version, or name for its newest version.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """One pipeline with its spec, as JSON."""
    with reported(), BatchlineClient(url, api_key) as client:
        typer.echo(jsonio.dumps_str(client.pipeline(ref)))


@pipelines_app.command("validate")
def validate_pipeline(
    file: Annotated[Path, typer.Argument(help="A spec file (.yaml, .yml or .json).")],
    sample: Annotated[
        str | None,
        typer.Option(help="Records to run it over as a dry run (.json, .ndjson or .csv)."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Check a spec file on the API, as start-up would; prints the dry run's output as JSON."""
    with reported():
        spec = _spec_text(file)
        records = read_items(sample, None, None) if sample is not None else None
        with BatchlineClient(url, api_key) as client:
            checked = client.validate_pipeline(spec, records)
    if not checked.get("valid"):
        for error in checked.get("errors") or []:
            stderr_console().print(_in_file(str(error), file), markup=False)
        raise typer.Exit(1)
    stderr_console().print(f"{file}: {checked.get('ref')} is valid", markup=False)
    if "dry_run" in checked:
        typer.echo(jsonio.dumps_str(checked["dry_run"]))


def _spec_text(file: Path) -> Any:
    """The file's text; a .json file parsed, so that its numbers stay exact decimals."""
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if file.suffix != ".json":
        return text
    try:
        return jsonio.loads(text)
    except jsonio.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON ({exc}); fix the syntax") from None


def _in_file(error: str, file: Path) -> str:
    # The server names the checked text "spec"; the user knows it by its file name.
    return f"{file}{error[len('spec') :]}" if error.startswith("spec:") else error
