"""`batchline worker`: one Faust worker process, plus its /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterable
from types import FrameType
from typing import Any

import faust
from prometheus_client import start_http_server

from schemas.settings import Settings
from streams.app import TABLES, worker_data_dir, worker_group_id
from streams.errors import TopicCreationFailed, WorkerCannotStart
from streams.kafka_security import KafkaSecurity
from streams.resources import WorkerResources
from streams.topics import (
    ensure_configured_topics,
    ensure_worker_topics,
    wait_for_group_coordinator,
)
from streams.wiring import build_worker
from telemetry.logs import configure, logging_config

log = logging.getLogger(__name__)


class Worker(faust.Worker):
    """Faust's worker with signal handlers that cannot leak records or hang the process.

    mode answers SIGUSR1 by printing every frame's local variables (a record being transformed
    among them) and SIGUSR2 by opening pdb on the event loop, which stops a headless worker.
    Here SIGUSR1 logs where every thread and task is, as file:line in function only, and
    SIGUSR2 is ignored.
    """

    def _on_sigusr1(self) -> None:
        threads = {thread.ident: thread.name for thread in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            _log_stack("thread_name", threads.get(ident, str(ident)), traceback.walk_stack(frame))
        for task in asyncio.all_tasks(self.loop):
            _log_stack("task_name", task.get_name(), ((f, f.f_lineno) for f in task.get_stack()))

    def __init__(self, app: faust.App, resources: WorkerResources, **options: Any) -> None:
        super().__init__(app, resources, **options)
        self._pipelines = resources.registry

    def _install_signal_handlers_unix(self) -> None:
        super()._install_signal_handlers_unix()
        # SIGHUP: load new pipeline spec files (its default would end the process).
        self.loop.add_signal_handler(signal.SIGHUP, self._pipelines.reload_logged)

    def _on_sigusr2(self) -> None:
        log.warning("SIGUSR2 ignored: Batchline workers do not open a debugger")


def _log_stack(kind: str, name: str, frames: Iterable[tuple[FrameType, int]]) -> None:
    stack = [f"{f.f_code.co_filename}:{line} in {f.f_code.co_name}" for f, line in frames]
    log.warning("stack dump (SIGUSR1)", extra={kind: name, "stack": stack})


async def _prepare_kafka(settings: Settings) -> None:
    group_id = worker_group_id(settings)
    bootstrap, security = settings.kafka_bootstrap, KafkaSecurity.from_settings(settings)
    await ensure_configured_topics(settings)
    await ensure_worker_topics(bootstrap, group_id, TABLES, settings.partitions, security)
    await wait_for_group_coordinator(bootstrap, group_id, security=security)


def run_worker(settings: Settings) -> None:
    """Runs until SIGINT or SIGTERM; Faust then stops the agents, commits and leaves the group."""
    # Faust configures logging only when its worker starts: before that, the lines of building
    # the worker ("pipelines loaded") would go nowhere.
    configure(settings.log_level, settings.log_format)
    try:
        asyncio.run(_prepare_kafka(settings))
    except TopicCreationFailed as exc:
        raise WorkerCannotStart(
            f"{exc}. Fix the broker's policy or create the topics yourself (see the README's "
            "Topics section), then start the worker again."
        ) from None
    streams_app, resources = build_worker(settings)  # validates every pipeline spec first
    try:
        server, _ = start_http_server(
            settings.worker_metrics_port,
            addr=settings.worker_metrics_host,
            registry=streams_app.metrics_registry,
        )
    except OSError as exc:
        raise WorkerCannotStart(
            f"Cannot serve worker metrics on {settings.worker_metrics_host}:"
            f"{settings.worker_metrics_port} ({exc.strerror}): give each worker on this machine "
            "its own BATCHLINE_WORKER_METRICS_PORT (0 picks a free port)"
        ) from None
    host, port = settings.worker_metrics_host, server.server_port
    print(f"worker metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    data_dir = worker_data_dir(settings)
    data_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    try:
        worker = Worker(
            streams_app.app,
            resources,
            loglevel=settings.log_level,
            redirect_stdouts=False,
            logging_config=logging_config(settings.log_level, settings.log_format),
        )
        worker.execute_from_commandline()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
