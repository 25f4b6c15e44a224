"""`batchline submit/status/results/cancel/batches` as a subprocess against a running stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import jsonio
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ITEMS = 10_000
CLI_TIMEOUT_S = 240.0


def batchline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The server is chosen by flags only: a BATCHLINE_URL/KEY in the caller's shell must not leak.
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHLINE_URL", "BATCHLINE_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "batchline.cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        cwd=cwd,
        env=env,
        check=False,
    )


def write_items(path: Path, count: int) -> None:
    """Distinct items whose amounts ("0.50", "1.50", ...) tell their row."""
    with path.open("w") as out:
        for row in range(count):
            item = {
                "ts": "2024-01-01T00:00:00Z",
                "amt": f"{row}.50",
                "email": f"user{row}@example.com",
                "phone": "555-0123",
            }
            out.write(jsonio.dumps_str(item) + "\n")


def assert_one_clean_line(stderr: str) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("batchline: ")
    assert "Traceback" not in stderr


def test_submit_wait_of_10000_lines_then_results_writes_all_of_them(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    auth = ["--url", url, "--api-key", stack.api_key]
    source = tmp_path / "items.ndjson"
    write_items(source, ITEMS)

    submitted = batchline(
        "submit", str(source), "--batch-size", "500", "--wait", *auth, cwd=tmp_path
    )

    assert submitted.returncode == 0, submitted.stderr + stack.logs()
    batch_id = submitted.stdout.splitlines()[-1]
    assert batch_id.startswith("batch_")
    # The bar's last frame (rich draws it once at the end when stderr is not a terminal).
    assert "100%" in submitted.stderr and f"{ITEMS}/{ITEMS} items" in submitted.stderr
    assert f"{batch_id} completed: {ITEMS} processed, 0 filtered in " in submitted.stderr
    assert stack.api_key not in submitted.stdout + submitted.stderr

    out = tmp_path / "out.ndjson"
    fetched = batchline("results", batch_id, "-o", str(out), *auth, cwd=tmp_path)

    assert fetched.returncode == 0, fetched.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) == ITEMS
    results = [jsonio.loads(line) for line in lines]
    assert [str(result["amount"]) for result in results] == [f"{row}.50" for row in range(ITEMS)]
    assert results[7]["email"] == "u***7@example.com"
    assert f"Wrote {ITEMS} results to {out}" in fetched.stderr

    status = batchline("status", batch_id, *auth, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    body = jsonio.loads(status.stdout)
    assert (body["status"], body["processed"], body["progress"]) == ("completed", ITEMS, 100)

    listed = batchline("batches", *auth, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert batch_id in listed.stdout and "completed" in listed.stdout


def test_unknown_batch_is_exit_1_with_one_stderr_line(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    url = stack.add_api()
    auth = ["--url", url, "--api-key", stack.api_key]

    for command in ("status", "results", "cancel"):
        answer = batchline(command, "batch_does_not_exist", *auth, cwd=tmp_path)
        assert answer.returncode == 1
        assert answer.stderr == "batchline: 404 not_found: Batch job not found\n"
        assert answer.stdout == ""


def test_unknown_api_key_is_exit_1_and_the_key_is_never_printed(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    url = stack.add_api()
    wrong = "bl_not-a-key-this-server-knows"

    answer = batchline("batches", "--url", url, "--api-key", wrong, cwd=tmp_path)

    assert answer.returncode == 1
    assert answer.stderr == "batchline: 401 unauthorized: Unknown or revoked API key\n"
    assert wrong not in answer.stdout + answer.stderr


def test_cancel_of_a_finished_batch_is_refused_as_finished(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    auth = ["--url", url, "--api-key", stack.api_key]
    source = tmp_path / "one.csv"
    source.write_text("ts,amt,email,phone\n2024-01-01T00:00:00Z,100.50,user@example.com,555-0123\n")
    submitted = batchline("submit", str(source), "--wait", *auth, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr + stack.logs()
    batch_id = submitted.stdout.splitlines()[-1]

    answer = batchline("cancel", batch_id, *auth, cwd=tmp_path)

    assert answer.returncode == 1
    assert_one_clean_line(answer.stderr)
    assert answer.stderr.startswith("batchline: 409 batch_finished: Batch is already completed")


def test_invalid_item_rejected_by_the_server_names_its_row(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    url = stack.add_api()
    source = tmp_path / "items.json"
    source.write_text(
        '[{"ts": "2024-01-01T00:00:00Z", "amt": 1.50, "email": "a@example.com", "phone": "1"},'
        ' {"ts": "2024-01-01T00:00:00Z", "amt": "lots", "email": "b@example.com", "phone": "2"}]'
    )

    answer = batchline(
        "submit",
        str(source),
        "--on-invalid",
        "reject",
        "--url",
        url,
        "--api-key",
        stack.api_key,
        cwd=tmp_path,
    )

    assert answer.returncode == 1
    assert_one_clean_line(answer.stderr)
    assert answer.stderr.startswith("batchline: 400 validation_error: ")
    assert "lots" not in answer.stderr


def test_server_that_is_not_there_is_exit_2(tmp_path: Path) -> None:
    from batchline.broker import free_port

    url = f"http://127.0.0.1:{free_port()}"
    answer = batchline("status", "batch_1", "--url", url, "--api-key", "bl_x", cwd=tmp_path)

    assert answer.returncode == 2
    assert_one_clean_line(answer.stderr)
    assert f"the server at {url} is unreachable" in answer.stderr
