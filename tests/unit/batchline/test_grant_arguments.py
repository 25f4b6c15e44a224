"""`batchline keys grant-producer` names its producer by a key or by a namespace, never both."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from batchline.cli import app


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ([], "not both"),
        (["orders", "--namespace", "p0123456789abcdef"], "not both"),
        (["--namespace", "p0123"], "is no producer namespace"),
        (["--namespace", "P0123456789ABCDEF"], "is no producer namespace"),
    ],
)
def test_a_grant_names_one_key_or_one_well_formed_namespace(
    arguments: list[str], said: str
) -> None:
    answer = CliRunner().invoke(app, ["keys", "grant-producer", *arguments])
    assert answer.exit_code == 2
    assert said in answer.output
