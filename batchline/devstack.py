"""`batchline dev` / `make run`: a broker, one worker and the API, started and stopped together.

Each child runs in a session of its own, so Ctrl-C reaches only this supervisor, which then stops
the children in order (API, worker, broker) and kills whatever does not exit in time: nothing is
left running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from batchline import broker as local_broker
from batchline.broker.auth import SERVICE_USER, BrokerCredentials
from batchline.errors import BatchlineError
from telemetry.logs import resolved_format

STOP_TIMEOUT_S = 20.0
API_READY_TIMEOUT_S = 60.0
DEV_KEY_FILE = "dev-api-key"
DEV_KEY_NAME = "dev"
# A broker folder is formatted with or without authentication for good: each has its own.
BROKER_DIR = "kafka"
AUTH_BROKER_DIR = "kafka-auth"
WORKER_READY = b"[^Worker]: Ready"


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "batchline.cli", *args]
    return subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL)  # noqa: S603


def _spawn_worker(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], threading.Event]:
    """The worker, its log lines passed on to ours as they come, and an event set once it has
    said it is ready (so that the banner comes after its start-up lines, not among them)."""
    command = [sys.executable, "-m", "batchline.cli", "worker"]
    process = subprocess.Popen(  # noqa: S603
        command, env=env, start_new_session=True, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ready = threading.Event()

    def pass_on() -> None:
        assert process.stderr is not None  # noqa: S101 - piped above
        for line in process.stderr:
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()
            if WORKER_READY in line:
                ready.set()

    threading.Thread(target=pass_on, name="worker-log", daemon=True).start()
    return process, ready


def _wait_worker(ready: threading.Event, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    while not ready.wait(0.3):
        if worker.poll() is not None:
            raise BatchlineError("The worker exited during start-up; see the lines above")
        if time.monotonic() > deadline:
            raise BatchlineError(f"The worker was not ready in {API_READY_TIMEOUT_S:.0f} s")


def _banner(lines: list[str]) -> str:
    """The start's last words, set apart by rules (and bold on a terminal). The key stays on a
    line of its own, just above "Press Ctrl-C to stop.", for scripts that read it."""
    rule = "─" * max(len(line) for line in lines)
    body = "\n".join(lines)
    if sys.stdout.isatty():
        body = f"\033[1m{body}\033[0m"
    return f"\n{rule}\n{body}\n{rule}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_api(url: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise BatchlineError("A worker or the API exited during start-up; see the lines above")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise BatchlineError(f"The API at {url} did not become healthy in {API_READY_TIMEOUT_S:.0f} s")


async def _dev_api_key(data_dir: Path, store_url: str, wanted: str | None) -> str:
    """The key from --api-key, else the one kept in data/dev-api-key, else a new one."""
    from api.security import hash_api_key, new_api_key
    from store import ResultsStore

    key_file = data_dir / DEV_KEY_FILE
    key = wanted or (key_file.read_text().strip() if key_file.exists() else None)
    store = await ResultsStore.connect(store_url)
    try:
        if key is not None and await store.find_api_key(hash_api_key(key)) is not None:
            return key
        key = key or new_api_key()
        # Key names stay taken after revoking, so each dev key has its own; the old ones go.
        for record in await store.list_api_keys():
            if record.name.startswith(f"{DEV_KEY_NAME}-") and record.revoked_at is None:
                await store.revoke_api_key(record.key_id)
        await store.create_api_key(f"{DEV_KEY_NAME}-{int(time.time())}", hash_api_key(key))
    finally:
        await store.close()
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def _start_broker(
    data_dir: Path, port: int, auth: bool, topic_prefix: str
) -> tuple[subprocess.Popen[bytes], str, BrokerCredentials | None]:
    """The local broker, ready; with ``auth``, its ACLs granted for this stack's topic prefix
    and the credentials its clients log in with."""
    folder = data_dir / (AUTH_BROKER_DIR if auth else BROKER_DIR)
    broker = local_broker.start(folder, port, auth=auth)
    bootstrap = f"127.0.0.1:{port}"
    try:
        local_broker.wait_ready(bootstrap, broker, security=local_broker.admin_security(folder))
        if auth:
            local_broker.grant_acls(folder, bootstrap, topic_prefix)
    except BaseException:
        _stop(broker)
        raise
    return broker, bootstrap, BrokerCredentials.of(folder) if auth else None


def run_dev_stack(
    *,
    port: int,
    api_key: str | None,
    data_dir: Path,
    kafka: str | None,
    kafka_port: int = 9092,
    auth: bool = False,
) -> int:
    from schemas.settings import Settings

    settings = Settings()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("BATCHLINE_STORE_URL", f"sqlite+aiosqlite:///{data_dir / 'results.db'}")
    env["BATCHLINE_DATA_DIR"] = str(data_dir)
    # The children's stderr is this terminal (or this pipe): readable lines on a terminal.
    env["BATCHLINE_LOG_FORMAT"] = resolved_format(settings.log_format)
    if settings.worker_metrics_port and not settings.worker_metrics_urls:
        # The console's Operations page reads the worker's metrics through the API.
        env["BATCHLINE_WORKER_METRICS_URLS"] = (
            f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
        )
    children: list[subprocess.Popen[bytes]] = []
    credentials: BrokerCredentials | None = None
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if kafka is None:
            broker, kafka, credentials = _start_broker(
                data_dir, kafka_port, auth, settings.topic_prefix
            )
            children.append(broker)
            if credentials is not None:
                # The API and the worker log in as the service principal.
                env.update(credentials.env(SERVICE_USER))
        env["BATCHLINE_KAFKA_BOOTSTRAP"] = kafka
        key = asyncio.run(_dev_api_key(data_dir, env["BATCHLINE_STORE_URL"], api_key))
        worker, worker_ready = _spawn_worker(env)
        children.append(worker)
        children.append(_spawn(["api", "--port", str(port)], env))
        url = f"http://127.0.0.1:{port}"
        _wait_api(url, children)
        _wait_worker(worker_ready, worker)
        if credentials is not None:
            print(credentials.usage(settings.topic_prefix), flush=True)
        banner = [
            f"Batchline is up: {url}",
            f"  console  {url}/",
            f"  API docs {url}/docs",
            "Development API key (header X-API-Key):",
            key,
            "Press Ctrl-C to stop.",
        ]
        print(_banner(banner), flush=True)
        while not stopping:
            if any(child.poll() is not None for child in children):
                print(
                    "batchline: a process of the stack exited; stopping the rest", file=sys.stderr
                )
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for child in reversed(children):
            _stop(child)
