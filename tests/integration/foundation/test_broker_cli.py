"""`batchline broker`: a real KRaft broker in the foreground that SIGTERM stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchline.broker import broker_answers, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
READY_BUDGET_S = 20.0


def test_broker_command_serves_kafka_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "broker.err"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "batchline.cli",
                "broker",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "kafka"),
            ],
            stderr=stderr,
        )
    try:
        started = time.monotonic()
        # The command says when the broker answers; wait for that line, not just a port.
        while "ready on 127.0.0.1" not in log.read_text():
            assert process.poll() is None, "the broker exited during start-up"
            assert time.monotonic() - started < READY_BUDGET_S, "not ready within 20 s"
            time.sleep(0.2)
        assert asyncio.run(broker_answers(f"127.0.0.1:{port}"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not asyncio.run(broker_answers(f"127.0.0.1:{port}", timeout_s=1.0))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "ready on 127.0.0.1" in log.read_text()
