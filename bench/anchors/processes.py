"""The tools under test as processes: started on input already waiting, watched, stopped.

Every tool runs in a process of its own and in a session of its own, so each gets the same kind
of CPU budget as Batchline's worker, and stopping its process group stops all of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from batchline.devstack import _spawn, _stop
from bench.anchors.harness import (
    PARTITIONS,
    Batch,
    ToolFailed,
    check_outputs,
    produce,
    rate_after_first_output,
    rate_since,
    read_outputs,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL if it has not exited in time."""
        _stop(self.process)

    def tail(self, lines: int = 40) -> str:
        if self.log is None or not self.log.exists():
            return "(its output went to this terminal)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def spawn_anchor(
    module: str, *, bootstrap: str, source: str, output: str, group: str, scratch: Path
) -> Child:
    """``python -m <module>`` of bench.anchors, its output kept in ``scratch``/output.log."""
    scratch.mkdir(parents=True, exist_ok=True)
    log = scratch / "output.log"
    command = [sys.executable, "-m", module, "--bootstrap", bootstrap, "--input", source]
    command += ["--output", output, "--group", group, "--scratch", str(scratch)]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(module.rsplit(".", 1)[-1], process, log)


def batchline_env(bootstrap: str, prefix: str, data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "BATCHLINE_KAFKA_BOOTSTRAP": bootstrap,
        "BATCHLINE_TOPIC_PREFIX": prefix,
        "BATCHLINE_PARTITIONS": str(PARTITIONS),
        "BATCHLINE_DATA_DIR": str(data_dir),
        "BATCHLINE_STORE_URL": f"sqlite+aiosqlite:///{data_dir / 'results.db'}",
        "BATCHLINE_WORKER_METRICS_PORT": "0",
        "BATCHLINE_LOG_LEVEL": "WARNING",
    }


def spawn_worker(env: dict[str, str]) -> Child:
    """``batchline worker`` as `batchline dev` starts it (its output goes to this terminal)."""
    return Child("batchline worker", _spawn(["worker"], env))


@dataclass(frozen=True, slots=True)
class ToolRun:
    """Items/s of one tool by each rule of bench.anchors.harness, and the input's ceiling."""

    waiting: float  # rule A
    streamed: float  # rule B
    producer: float  # items/s the driver wrote rule B's input at


def run_tool(
    start: Callable[[], Child],
    bootstrap: str,
    topics: tuple[str, str],
    waiting: Sequence[Batch],
    streamed: Sequence[Batch],
) -> ToolRun:
    """Starts a tool on ``waiting`` (already on the input topic) and reads its outputs until
    complete; then produces ``streamed`` to the now warm tool and reads those; stops it.

    A tool that exits, stalls or writes a wrong output raises ToolFailed: it gets no figure.
    """
    source, output = topics
    child = start()
    try:
        first = asyncio.run(read_outputs(bootstrap, output, waiting, child.alive))
        check_outputs(first, waiting)
        started_ms, produced_ms = asyncio.run(produce(bootstrap, source, streamed))
        second = asyncio.run(read_outputs(bootstrap, output, streamed, child.alive))
        check_outputs(second, streamed)
    except ToolFailed as exc:
        # First line: what went wrong; then the tool's own last words, to see why.
        raise ToolFailed(f"{exc}\n--- last output of {child.name}:\n{child.tail()}") from None
    finally:
        child.stop()
    items = sum(sum(batch.sizes) for batch in streamed)
    return ToolRun(
        waiting=rate_after_first_output(first, waiting),
        streamed=rate_since(second, streamed, started_ms),
        producer=items / max(produced_ms - started_ms, 1) * 1000,
    )


class PeakRss:
    """The highest resident set size of one process (children not included), sampled every
    ``interval_s`` on a thread of its own so that the event loop's pauses do not skip samples."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._done = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self._interval_s):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def stop_children_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, so that a killed run still goes through the finally
    blocks that stop the broker and every tool (they run in sessions of their own)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
