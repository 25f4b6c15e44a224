"""Every Prometheus metric Batchline exports, built in one place on an injectable registry.

The four metrics of the seed document keep their exact names and types. Labels never carry a
batch ID, an API key or a record value: only small fixed sets (stage, scope, error type, route).

| metric                                  | type      | labels                   | who       |
|-----------------------------------------|-----------|--------------------------|-----------|
| batch_processed_total                   | counter   | stage                    | API, worker |
| batch_processing_duration_seconds       | histogram | scope                    | API, worker |
| batch_processing_errors_total           | counter   | error_type               | API, worker |
| batch_memory_usage_bytes                | gauge     | kind                     | API, worker |
| batch_filtered_total                    | counter   | stage                    | worker    |
| batch_cache_requests_total              | counter   | result (hit/miss)        | API, worker |
| batch_rate_limit_rejections_total       | counter   | limit                    | API       |
| http_requests_total                     | counter   | method, route, status    | API       |
| http_request_duration_seconds           | histogram | method, route            | API       |
| batch_consumer_lag_messages             | gauge     | topic, partition         | worker    |
| batch_store_transactions_total          | counter   | kind                     | worker    |
| batch_chunk_group_size                  | histogram | -                        | worker    |
| batch_dead_letters_total                | counter   | code                     | worker    |
| batch_reconciler_repairs_total          | counter   | action                   | worker    |
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        """``registry=None`` creates the metrics without registering them (multiprocess mode,
        where a MultiProcessCollector reads them back from files)."""
        self.registry = registry
        self.processed = Counter(
            "batch_processed",
            "Items processed: validated and published (stage=accepted, API) or transformed "
            "into a result (stage=transformed, worker).",
            ["stage"],
            registry=registry,
        )
        self.filtered = Counter(
            "batch_filtered",
            "Items dropped by a filter or, with on_invalid=skip, as invalid.",
            ["stage"],
            registry=registry,
        )
        self.duration = Histogram(
            "batch_processing_duration_seconds",
            "Processing time: scope=chunk (one chunk on a worker), scope=batch (submission to "
            "completion), scope=request (a submit request in the API, waiting included).",
            ["scope"],
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.errors = Counter(
            "batch_processing_errors",
            "Processing errors by type (validation, dead_letter, batch_failed, "
            "kafka_unavailable, store_retry, internal).",
            ["error_type"],
            registry=registry,
        )
        self.memory = Gauge(
            "batch_memory_usage_bytes",
            "kind=resident: the process's resident memory; kind=in_flight: bytes of batch "
            "payloads the process holds right now.",
            ["kind"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rate_limited = Counter(
            "batch_rate_limit_rejections",
            "Requests refused by a limit (requests per minute, unfinished batches, batch size, "
            "failed authentications per address).",
            ["limit"],
            registry=registry,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS_S,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "batch_consumer_lag_messages",
            "Messages a worker has yet to consume on each partition it holds.",
            ["topic", "partition"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.store_transactions = Counter(
            "batch_store_transactions",
            "Write transactions of the results store on a worker: kind=chunk_group (one per "
            "group of chunks transformed), kind=progress (live counts of a group of progress "
            "messages), kind=finish (a batch made final).",
            ["kind"],
            registry=registry,
        )
        self.group_size = Histogram(
            "batch_chunk_group_size",
            "Chunks a worker transformed together (one store transaction, one round of sends).",
            buckets=GROUP_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "batch_dead_letters",
            "Requests-topic messages dead-lettered, by reason code (streams.admission).",
            ["code"],
            registry=registry,
        )
        self.reconciler_repairs = Counter(
            "batch_reconciler_repairs",
            "Batches the reconciler repaired: action=redelivered (missing chunks read again), "
            "reannounced (stored chunks counted again), abandoned (never published), "
            "failed_missing (chunks never arrived in time). Zero in a run without crashes.",
            ["action"],
            registry=registry,
        )
        self._process = psutil.Process(os.getpid())
        if registry is not None:
            # Read at scrape time. Multiprocess mode cannot call functions: its processes
            # call sample_resident_memory() instead.
            self.memory.labels(kind="resident").set_function(self._resident_bytes)

    def _resident_bytes(self) -> float:
        return float(self._process.memory_info().rss)

    def sample_resident_memory(self) -> None:
        if self.registry is None:
            self.memory.labels(kind="resident").set(self._resident_bytes())


class CacheCounts(Protocol):
    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...


class CountsCacheLookups(Protocol):
    """What the transform engine offers (transforms.PipelineRegistry); named here as a protocol
    so that telemetry, at the bottom of the house, imports nothing above it."""

    def cache_stats(self) -> CacheCounts: ...


class CacheCollector(Collector):
    """Reads the transform engine's cumulative cache counters at scrape time."""

    def __init__(self, pipelines: CountsCacheLookups) -> None:
        self._pipelines = pipelines

    def collect(self) -> Iterator[Metric]:
        stats = self._pipelines.cache_stats()
        family = CounterMetricFamily(
            "batch_cache_requests",
            "Lookups in the transform engine's value caches, by result.",
            labels=["result"],
        )
        family.add_metric(["hit"], stats.hits)
        family.add_metric(["miss"], stats.misses)
        yield family
