"""The Faust application and its handles: settings, topics and the progress table.

A factory rather than a module-level app, so that tests and several workers on one machine can
each build their own with their own topic prefix and data directory. This module knows no
handler: streams.wiring puts handlers and agents together.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TableT
from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from streams.kafka_security import KafkaSecurity
from streams.topics import MAX_MESSAGE_BYTES, TopicNames
from telemetry.metrics import Metrics

# A chunk is committed quickly after it is processed so that a crash redoes little work.
COMMIT_INTERVAL_S = 1.0
# Faust holds sends for this long to batch them; a 1-item batch should not wait.
PRODUCER_LINGER_MS = 0
# A worker that dies without leaving the group (kill -9, lost host) holds its partitions until
# its session expires: keep that short so that another worker takes over within seconds.
SESSION_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 1.0
# The tables, by name; worker start-up creates their changelog topics before Faust runs.
PROGRESS_TABLE = "progress"
# RocksDB keeps a database per table partition. With Faust's defaults (64 MiB write buffers,
# up to 3 of them, a 2 GiB block cache) every state write stays in memory until a buffer fills,
# and each group rewrites its batches' states: 180 MB of such writes over 8 partitions grew a
# process by 194 MiB, on the way to gigabytes. The table itself is small (a few hundred bytes a
# batch), so small buffers lose nothing: the same writes then add 10 MiB (9 MiB after a third).
ROCKSDB_OPTIONS = {
    "write_buffer_size": 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024 * 1024,
}
TABLES = (PROGRESS_TABLE,)


@dataclass(slots=True)
class StreamsApp:
    """The Faust app with the handles the agents and tests need."""

    app: faust.App
    topics: TopicNames
    progress_in: faust.TopicT
    progress_table: TableT[bytes, Any]
    metrics: Metrics
    metrics_registry: CollectorRegistry


def worker_data_dir(settings: Settings) -> Path:
    """A folder of this worker's own, so that workers on one machine never share RocksDB files.

    Table state is rebuilt from the changelog topics, so nothing of value is lost when it goes.
    """
    return settings.data_dir / "workers" / f"{socket.gethostname()}-{os.getpid()}"


def worker_group_id(settings: Settings) -> str:
    """The Faust app ID, which is also the workers' Kafka consumer group."""
    return f"{settings.topic_prefix}-worker"


def build_app(settings: Settings, metrics_registry: CollectorRegistry) -> StreamsApp:
    names = TopicNames(settings.topic_prefix)
    brokers = [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")]
    app = faust.App(
        worker_group_id(settings),
        broker=brokers,
        broker_credentials=KafkaSecurity.from_settings(settings).faust_credentials(),
        store=settings.worker_table_store,
        datadir=str(worker_data_dir(settings)),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_S,
        producer_linger_ms=PRODUCER_LINGER_MS,
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        stream_wait_empty=False,
        table_standby_replicas=0,
        worker_redirect_stdouts=False,
        autodiscover=False,
        logging_config=None,
    )
    partitions = settings.partitions
    return StreamsApp(
        app=app,
        topics=names,
        # The progress agent reads the progress and control topics as one stream: both are
        # keyed by batch ID with equal partition counts, so one table serves both. Raw bytes
        # in: decoding is ours, so a malformed message is logged and skipped, not an error
        # deep inside Faust.
        progress_in=app.topic(
            names.progress,
            names.control,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        ),
        # Keys are the batch ID's raw bytes, as on the progress and control topics. Values are
        # plain JSON (a value_type would make Faust build a model class from each value).
        progress_table=app.Table(
            PROGRESS_TABLE, partitions=partitions, key_type=bytes, options=ROCKSDB_OPTIONS
        ),
        metrics=Metrics(metrics_registry),
        metrics_registry=metrics_registry,
    )
