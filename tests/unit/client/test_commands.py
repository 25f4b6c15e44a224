"""The typer commands against a fake API (httpx.MockTransport): streams, exit codes, one line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from batchline.cli import app
from batchline.client import calls, commands
from batchline.client.http import BatchlineClient
from schemas import jsonio

KEY = "bl_unit-secret-key"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], None]]:
    """Routes every client the commands make to ``handler``."""
    monkeypatch.setattr(calls, "POLL_INTERVAL_S", 0.0)

    def install(handler: Handler) -> None:
        def make(url: str, api_key: str | None) -> BatchlineClient:
            return BatchlineClient(url, api_key, transport=httpx.MockTransport(handler))

        monkeypatch.setattr(commands, "BatchlineClient", make)

    yield install


def status_body(state: str, progress: int, processed: int, **more: Any) -> dict[str, Any]:
    return {
        "batch_id": "batch_1",
        "status": state,
        "progress": progress,
        "processed": processed,
        "filtered": 0,
        "duration": "1.25" if state != "processing" else None,
        "total": 3,
        **more,
    }


def fake_api(states: list[dict[str, Any]]) -> Handler:
    polls = iter(states)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/batch"):
            return httpx.Response(202, json={"batch_id": "batch_1", "status": "queued"})
        return httpx.Response(200, content=jsonio.dumps(next(polls)))

    return handler


def items_file(tmp_path: Path) -> str:
    path = tmp_path / "items.ndjson"
    path.write_text('{"amt": 1.50}\n{"amt": 2.50}\n{"amt": 3.50}\n')
    return str(path)


def test_submit_prints_the_batch_id_alone_on_the_last_stdout_line(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path
) -> None:
    serve(fake_api([]))
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--api-key", KEY])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "batch_1"
    assert "Submitted 3 items as batch_1" in result.stderr


def test_submit_wait_shows_progress_then_the_summary(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path
) -> None:
    serve(
        fake_api(
            [
                status_body("queued", 0, 0),
                status_body("processing", 33, 1),
                status_body("completed", 100, 3),
            ]
        )
    )
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--wait", "--api-key", KEY])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "batch_1"
    assert "100%" in result.stderr and "3/3 items" in result.stderr
    assert result.stderr.splitlines()[-1] == "batch_1 completed: 3 processed, 0 filtered in 1.25 s"
    assert KEY not in result.output


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_submit_wait_exits_non_zero_when_the_batch_does_not_complete(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path, state: str
) -> None:
    serve(fake_api([status_body(state, 40, 1, reason="worker gave up")]))
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--wait"])
    assert result.exit_code == 1
    assert f"batch_1 {state}: 1 processed" in result.stderr
    assert "worker gave up" in result.stderr


def test_submit_wait_rides_out_a_rate_limit(
    runner: CliRunner,
    serve: Callable[[Handler], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    answers = iter(
        [
            httpx.Response(202, json={"batch_id": "batch_1", "status": "queued"}),
            httpx.Response(
                429,
                json={"error": "rate_limit_exceeded", "message": "slow down"},
                headers={"Retry-After": "3"},
            ),
            httpx.Response(200, content=jsonio.dumps(status_body("completed", 100, 3))),
        ]
    )
    serve(lambda request: next(answers))
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--wait"])
    assert result.exit_code == 0, result.output
    assert 3.0 in pauses


def test_submit_wait_gives_up_after_its_timeout_and_says_the_batch_goes_on(
    runner: CliRunner,
    serve: Callable[[Handler], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls, "POLL_INTERVAL_S", 0.5)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    serve(fake_api([status_body("processing", 33, 1)] * 100))
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--wait", "--timeout", "2"])
    assert result.exit_code == 124, result.output
    assert result.stdout.splitlines()[-1] == "batch_1"
    assert result.stderr.splitlines()[-1] == (
        "batchline: stopped waiting after 2 s; batch_1 is processing and goes on on the server"
    )
    assert 2.0 <= clock[0] - 1000.0 < 3.0  # polled every 0.5 s until the time ran out


def test_submit_wait_timeout_holds_while_the_server_keeps_answering_429(
    runner: CliRunner,
    serve: Callable[[Handler], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"batch_id": "batch_1", "status": "queued"})
        body = {"error": "rate_limit_exceeded", "message": "slow down"}
        return httpx.Response(429, json=body, headers={"Retry-After": "30"})

    serve(handler)
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--wait", "--timeout", "10"])
    assert result.exit_code == 124, result.output
    assert result.stderr.splitlines()[-1] == (
        "batchline: stopped waiting after 10 s; batch_1 goes on on the server"
    )
    assert clock[0] - 1000.0 <= 10.0  # never slept past the deadline


def test_submit_timeout_without_wait_is_a_usage_error(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path
) -> None:
    serve(fake_api([]))
    result = runner.invoke(app, ["submit", items_file(tmp_path), "--timeout", "10"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "batchline: --timeout goes with --wait"


def test_unknown_batch_is_one_stderr_line_and_exit_1(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    body = {"error": "not_found", "message": "Batch job not found", "details": {"batch_id": "x"}}
    serve(lambda request: httpx.Response(404, content=jsonio.dumps(body)))
    for command in (["status", "x"], ["results", "x"], ["cancel", "x"]):
        result = runner.invoke(app, [*command, "--api-key", KEY])
        assert result.exit_code == 1
        assert result.stderr == "batchline: 404 not_found: Batch job not found\n"
        assert result.stdout == ""


def test_empty_batch_id_is_refused_before_any_request(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    serve(record)
    for command in (["status", ""], ["results", " "], ["cancel", ""]):
        result = runner.invoke(app, [*command, "--api-key", KEY])
        assert result.exit_code == 1
        assert (
            result.stderr == "batchline: the batch id is empty: pass the id that submit printed\n"
        )
    assert requests == []


def test_unreachable_server_is_exit_2_with_the_url(runner: CliRunner) -> None:
    result = runner.invoke(app, ["batches", "--url", "http://127.0.0.1:1", "--api-key", KEY])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "the server at http://127.0.0.1:1 is unreachable" in result.stderr
    assert KEY not in result.output


def test_url_and_key_come_from_the_environment(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=jsonio.dumps(status_body("completed", 100, 3)))

    serve(handler)
    env = {"BATCHLINE_URL": "http://elsewhere.test:9000", "BATCHLINE_API_KEY": KEY}
    result = runner.invoke(app, ["status", "batch_1"], env=env)
    assert result.exit_code == 0, result.output
    assert str(seen[0].url) == "http://elsewhere.test:9000/api/v1/transform/batch/batch_1"
    assert seen[0].headers["X-API-Key"] == KEY
    assert jsonio.loads(result.stdout)["status"] == "completed"


def test_status_table_shows_the_counts(runner: CliRunner, serve: Callable[[Handler], None]) -> None:
    body = status_body("completed", 100, 3)
    serve(lambda request: httpx.Response(200, content=jsonio.dumps(body)))
    result = runner.invoke(app, ["status", "batch_1", "--table"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.stdout and "3/3 done" in result.stdout


def test_results_to_a_file_writes_every_line_and_leaves_no_partial_file(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path
) -> None:
    lines = b"".join(b'{"amount":%d.50}\n' % row for row in range(2500))
    serve(lambda request: httpx.Response(200, content=lines))
    out = tmp_path / "out.ndjson"
    result = runner.invoke(app, ["results", "batch_1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == lines
    assert "Wrote 2500 results" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ndjson"]


def test_results_to_stdout_are_the_ndjson_bytes(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    serve(lambda request: httpx.Response(200, content=b'{"amount":100.50}\n'))
    result = runner.invoke(app, ["results", "batch_1"])
    assert result.exit_code == 0, result.output
    assert result.stdout == '{"amount":100.50}\n'


def test_cancel_prints_the_server_message(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    message = "Batch processing job cancelled successfully"
    serve(lambda request: httpx.Response(200, json={"status": "cancelled", "message": message}))
    result = runner.invoke(app, ["cancel", "batch_1"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{message}\n"


def test_batches_lists_ids_and_states_in_a_table(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    page = {
        "batches": [
            status_body("completed", 100, 3, created_at="2024-01-01T00:00:05Z"),
            {**status_body("processing", 33, 1), "batch_id": "batch_2"},
        ],
        "offset": 0,
        "limit": 50,
        "total": 2,
    }
    serve(lambda request: httpx.Response(200, content=jsonio.dumps(page)))
    result = runner.invoke(app, ["batches"])
    assert result.exit_code == 0, result.output
    for text in ("batch_1", "batch_2", "completed", "processing", "33%", "2024-01-01T00:00:05Z"):
        assert text in result.stdout


def test_a_malformed_input_line_is_reported_before_any_request(
    runner: CliRunner, serve: Callable[[Handler], None], tmp_path: Path
) -> None:
    serve(lambda request: pytest.fail("no request for a bad file"))
    path = tmp_path / "bad.ndjson"
    path.write_text('{"n": 1}\n{"n": \n')
    result = runner.invoke(app, ["submit", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"batchline: {path} row 1 (line 2): Malformed JSON")
    assert result.stderr.count("\n") == 1


def test_errors_lists_every_page_as_a_table_or_as_json_lines(
    runner: CliRunner, serve: Callable[[Handler], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    every = [{"row": row, "field": "amount", "reason": "Invalid number format"} for row in range(5)]
    asked: list[str] = []

    def pages(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url.params))
        assert request.url.path == "/api/v1/transform/batch/batch_1/errors"
        offset = int(request.url.params["offset"])
        page = {"batch_id": "batch_1", "offset": offset, "limit": 3, "total": 5}
        return httpx.Response(200, content=jsonio.dumps({**page, "errors": every[offset:][:3]}))

    serve(pages)
    monkeypatch.setattr("batchline.client.calls.ERRORS_PAGE", 3)
    table = runner.invoke(app, ["errors", "batch_1"])
    as_json = runner.invoke(app, ["errors", "batch_1", "--json"])
    assert table.exit_code == 0, table.output
    assert "Invalid number format" in table.stdout and "amount" in table.stdout
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == every
    assert asked[:2] == ["offset=0&limit=3", "offset=3&limit=3"]


def test_errors_of_a_batch_without_any_says_so(
    runner: CliRunner, serve: Callable[[Handler], None]
) -> None:
    empty = {"batch_id": "batch_1", "offset": 0, "limit": 1000, "total": 0, "errors": []}
    serve(lambda request: httpx.Response(200, content=jsonio.dumps(empty)))
    result = runner.invoke(app, ["errors", "batch_1"])
    assert result.exit_code == 0 and result.stdout == ""
    assert "dropped no records as invalid" in result.stderr
