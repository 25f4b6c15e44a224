"""schemathesis against the running API's own OpenAPI document (`make schemathesis`).

Every operation is called with generated requests, valid and invalid: no answer may be a 5xx,
and every answer must match the schema the app itself publishes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
MAX_EXAMPLES = 40


def test_generated_requests_get_no_5xx_and_match_the_published_schema(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    run_schemathesis(make_stack, tmp_path, MAX_EXAMPLES)


def run_schemathesis(make_stack: StackFactory, tmp_path: Path, max_examples: int) -> int:
    """schemathesis against a running API and worker; asserts it passed, returns how many
    test cases it generated."""
    stack = make_stack(BATCHLINE_SYNC_WAIT_S="2")
    stack.add_worker()
    url = stack.add_api()
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is a test dependency: make test installs it"
    result = subprocess.run(
        [
            cli,
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(max_examples),
            "--header",
            f"X-API-Key: {stack.api_key}",
            "--request-timeout",
            "30",
            "--seed",
            "20241129",
            "--report-dir",
            str(tmp_path / "report"),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(result.stdout[-6000:])
    assert result.returncode == 0, (
        result.stdout[-6000:] + result.stderr[-2000:] + stack.logs()[-4000:]
    )
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None, result.stdout[-2000:]
    return int(generated.group(1))
