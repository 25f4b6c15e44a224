"""Running Batchline's own processes in tests: workers and API servers as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from batchline.broker import free_port
from batchline.keys import store_new_key

WORKER_READY_LINE = "[^Worker]: Ready"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


def stack_env(
    *, kafka: str, prefix: str, store_url: str, data_dir: Path, **more: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "BATCHLINE_KAFKA_BOOTSTRAP": kafka,
        "BATCHLINE_TOPIC_PREFIX": prefix,
        "BATCHLINE_STORE_URL": store_url,
        "BATCHLINE_DATA_DIR": str(data_dir),
        "BATCHLINE_PARTITIONS": "4",
        "BATCHLINE_WORKER_METRICS_PORT": "0",
        "BATCHLINE_LOG_LEVEL": "INFO",
    }
    env.update(more)
    return env


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        self.process.kill()
        self.process.wait()


# How a stack runs `batchline`: this interpreter, on this checkout.
THIS_CHECKOUT = (sys.executable, "-m", "batchline.cli")


@dataclass(frozen=True, slots=True)
class Launcher:
    """The `batchline` command a stack's processes run, and the folder they run in."""

    command: Sequence[str] = THIS_CHECKOUT
    cwd: Path | None = None


def spawn(
    name: str,
    args: list[str],
    env: Mapping[str, str],
    log_dir: Path,
    launcher: Launcher = Launcher(),
) -> ManagedProcess:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the test's own command
            [*launcher.command, *args],
            env=dict(env),
            cwd=launcher.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ManagedProcess(name, process, log)


def wait_for(what: str, ready: Callable[[], bool], process: ManagedProcess) -> None:
    """Waits until ``ready``; a process that never gets there is stopped, not left running."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"{process.name} exited before {what}:\n{process.output()}")
        if ready():
            return
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{process.name}: no {what} in {START_TIMEOUT_S} s:\n{process.output()}")


def start_worker(
    name: str, env: Mapping[str, str], log_dir: Path, launcher: Launcher = Launcher()
) -> ManagedProcess:
    worker = spawn(name, ["worker"], env, log_dir, launcher)
    wait_for("ready line", lambda: WORKER_READY_LINE in worker.output(), worker)
    return worker


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_api(
    name: str, env: Mapping[str, str], log_dir: Path, launcher: Launcher = Launcher()
) -> tuple[ManagedProcess, str]:
    port = free_port()
    api = spawn(name, ["api", "--port", str(port)], env, log_dir, launcher)
    url = f"http://127.0.0.1:{port}"
    wait_for("healthy /healthz", lambda: _healthy(url), api)
    return api, url


def new_key(store_url: str, name: str) -> str:
    """Usable from sync and async tests alike: the key is made on a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, store_new_key(store_url, name)).result()


class StackFactory(Protocol):
    def __call__(self, store_url: str | None = None, **env: str) -> Stack: ...


@dataclass
class Stack:
    """A running API with its workers, all on one topic prefix and one store."""

    env: dict[str, str]
    store_url: str
    log_dir: Path
    url: str = ""
    api_key: str = ""
    processes: list[ManagedProcess] = field(default_factory=list)
    launcher: Launcher = Launcher()

    def add_worker(self, name: str | None = None, **env: str) -> ManagedProcess:
        name = name or f"worker{len(self.processes)}"
        worker = start_worker(name, {**self.env, **env}, self.log_dir, self.launcher)
        self.processes.append(worker)
        return worker

    def add_api(self, name: str | None = None, **env: str) -> str:
        name = name or f"api{len(self.processes)}"
        api, url = start_api(name, {**self.env, **env}, self.log_dir, self.launcher)
        self.processes.append(api)
        return url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.processes)
