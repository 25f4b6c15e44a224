"""Every command's --help reads as a command line's should: flags are switches with no type,
and arguments are named plainly in the usage line (issue J, point 3)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from batchline.cli import app
from batchline.client.render import timestamp

COMMAND = typer.main.get_command(app)


def command_paths() -> list[list[str]]:
    """Every command and sub-command, as the words that name it."""
    # Typer's own click types (it vendors click), so groups are known by their commands.
    paths: list[list[str]] = [[]]
    for name, command in getattr(COMMAND, "commands", {}).items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    assert len(paths) > 10
    return paths


@pytest.mark.parametrize("words", command_paths(), ids=lambda words: " ".join(words) or "-")
def test_help_shows_no_type_for_a_switch_and_no_braces_in_usage(words: list[str]) -> None:
    answer = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert answer.exit_code == 0, answer.output
    assert "<bool>" not in answer.output and "BOOLEAN" not in answer.output
    usage = next(line for line in answer.output.splitlines() if "Usage:" in line)
    assert not re.search(r"[{}]", usage), usage


def test_wait_is_a_switch_that_takes_no_value() -> None:
    answer = CliRunner().invoke(app, ["submit", "items.json", "--wait", "true"])
    # "true" is not a value of --wait: it is a second FILE argument, which submit refuses.
    assert answer.exit_code != 0
    words = " ".join(answer.output.replace("│", " ").split())
    assert "unexpected extra argument(s) (true)" in words


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2026-11-30T17:21:45.144000+00:00", "2026-11-30T17:21:45Z"),
        ("2024-01-01T02:00:00+02:00", "2024-01-01T02:00:00+02:00"),
        (None, "-"),
    ],
)
def test_times_are_iso_8601_with_their_zone(given: str | None, shown: str) -> None:
    assert timestamp(given) == shown
