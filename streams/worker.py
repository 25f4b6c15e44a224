"""`batchline worker`: one Faust worker process, plus its /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import shutil

import faust
from prometheus_client import start_http_server

from schemas.settings import Settings
from streams.app import build_app, worker_data_dir
from streams.topics import TopicNames, ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Runs until SIGINT or SIGTERM; Faust then stops the agents, commits and leaves the group."""
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap, TopicNames(settings.topic_prefix), settings.partitions
        )
    )
    streams_app = build_app(settings)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    data_dir = worker_data_dir(settings)
    data_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    try:
        worker = faust.Worker(
            streams_app.app,
            streams_app.resources,
            loglevel=settings.log_level,
            redirect_stdouts=False,
        )
        worker.execute_from_commandline()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
