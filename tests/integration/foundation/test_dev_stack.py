"""`batchline dev` (what `make run` starts): up, healthy, and gone without a trace on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from batchline.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
START_BUDGET_S = 120.0
ITEM = {"ts": "2024-01-01T00:00:00Z", "amt": "100.50", "email": "a@b.co", "phone": "555-0123"}


def _processes_using(data_dir: Path) -> list[psutil.Process]:
    """Every process whose command line or environment names the stack's data directory."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue  # exited; only waiting for its parent to collect the exit code
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
        except (psutil.Error, TypeError):
            continue
        if str(data_dir) in cmdline or environ.get("BATCHLINE_DATA_DIR") == str(data_dir):
            found.append(process)
    return found


@contextmanager
def _running_stack(args: list[str], data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`batchline dev` for the block, its output in ``log``; then Ctrl-C (SIGINT), which must
    stop every process of it cleanly (exit 0). Killed if the block failed or it did not stop."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "batchline.cli", "dev", "--data-dir", str(data_dir), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Port 0: another worker on this machine may hold the default metrics port.
            env={**os.environ, "BATCHLINE_PARTITIONS": "2", "BATCHLINE_WORKER_METRICS_PORT": "0"},
        )
    try:
        yield process
        process.send_signal(signal.SIGINT)
        assert process.wait(90) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_key(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_BUDGET_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"batchline dev exited:\n{log.read_text()}"
        lines = log.read_text().splitlines()
        if "Press Ctrl-C to stop." in lines:
            return lines[lines.index("Press Ctrl-C to stop.") - 1]
        time.sleep(0.3)
    raise AssertionError(f"batchline dev did not come up:\n{log.read_text()}")


@pytest.mark.parametrize(
    ("own_broker", "auth"),
    [(True, False), (True, True), (False, False)],
    ids=["own-broker", "own-broker-with-auth", "existing-broker"],
)
def test_dev_stack_serves_healthz_and_ctrl_c_leaves_no_process(
    own_broker: bool, auth: bool, kafka_bootstrap: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    args = ["--port", str(port)]
    args += ["--kafka-port", str(free_port())] if own_broker else ["--kafka", kafka_bootstrap]
    args += ["--auth"] if auth else []
    log = tmp_path / "dev.log"
    with _running_stack(args, data_dir, log) as process:
        key = _wait_for_key(process, log)
        assert key.startswith("bl_")
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["kafka"] == "ok"
        if auth:
            _assert_a_batch_runs(port, key)
            assert (data_dir / "kafka-auth" / "credentials" / "results-reader.env").exists()
        assert len(_processes_using(data_dir)) >= (3 if own_broker else 2)
    leftovers = _processes_using(data_dir)
    for leftover in leftovers:
        leftover.kill()
    assert leftovers == []


def _assert_a_batch_runs(port: int, key: str) -> None:
    """The API and the worker both logged in: the broker lets no one else in."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/transform/batch",
        headers={"X-API-Key": key},
        json={"data": [ITEM]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"


# Issue J's budget: a healthy start, the seed's request and one 10,000-item batch, all processes.
MAX_LINES = 60


def test_a_healthy_stack_says_little_and_nothing_at_error_level_and_ends_with_its_banner(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    log = tmp_path / "dev.log"
    args = ["--port", str(port), "--kafka-port", str(free_port())]
    with _running_stack(args, data_dir, log) as process:
        key = _wait_for_key(process, log)
        started = log.read_text().splitlines()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=60
        ) as client:
            seed = client.post("/api/v1/transform/batch", json={"data": [ITEM]})
            assert seed.status_code == 200, seed.text
            big = client.post("/api/v1/transform/batch", json={"data": [ITEM] * 10_000})
            assert big.status_code == 200, big.text
        time.sleep(3)  # whatever the worker says after answering
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert len(lines) < MAX_LINES, "\n".join(lines)
    errors = [line for line in lines if '"level": "error"' in line or " ERROR " in line]
    assert not errors, "\n".join(lines)
    # The banner is the last thing the start prints: every process's start-up lines are above it.
    assert started[-1].startswith("─") and started[-2] == "Press Ctrl-C to stop."
    assert any("[^Worker]: Ready" in line for line in started)
    # Both the API and the worker say which pipelines they run: the worker's line comes before
    # Faust sets up logging, so it shows only if the worker configured logging first.
    assert sum('"pipelines loaded"' in line for line in started) == 2, "\n".join(started)
