"""Benchmark of the running service: latency of a 1-item batch and throughput of 10,000 items.

Run as ``python -m bench.bench_service``. It starts its own Kafka broker, one worker and the API
(SQLite store) in a temporary folder, all on loopback, and stops them at the end. Each figure
comes with a floor measured in the same run on the same broker, so the ratio survives a noisy
machine:
- latency: a 1-item batch submitted and answered synchronously, against a bare aiokafka
  produce -> consume round trip (what any Kafka-based service pays at least);
- throughput: a 10,000-item batch (parallel) with the default batch_size of 100 and with 1000,
  against the transform engine alone on the same items in this process (what the pipeline costs
  without Kafka and storage). Each chunk costs a fixed few milliseconds (a store write, two
  Kafka sends, two table updates), so larger chunks go faster.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from batchline import broker as local_broker
from batchline.devstack import _spawn, _stop, _wait_api
from schemas.settings import Settings
from transforms import PipelineRegistry

LATENCY_SAMPLES = 30
THROUGHPUT_ITEMS = 10_000
API_URL_PATH = "/api/v1/transform/batch"


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "ts": f"2024-01-01T00:00:{row % 60:02d}Z",
            "amt": f"{row}.{row % 100:02d}",
            "email": f"user{row}@example.com",
            "phone": f"555-{row % 10_000:04d}",
        }
        for row in range(count)
    ]


async def kafka_round_trip_ms(bootstrap: str, samples: int) -> list[float]:
    topic = f"bench-rtt-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=500
    )
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")
    await consumer.start()
    await consumer.getone()
    timings = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            await consumer.getone()
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return timings


@contextmanager
def quiet_collector() -> Iterator[None]:
    """The measuring client's own garbage collector kept out of latency timings, as ``timeit``
    does: its full collections paused this process for up to 80 ms, which no service could
    answer faster than. Both the service's samples and the raw round trip are taken inside."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def service_latency_ms(client: httpx.Client, samples: int) -> list[float]:
    body = {"data": _items(1)}
    client.post(API_URL_PATH, json=body).raise_for_status()  # warm-up
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.post(API_URL_PATH, json=body)
        response.raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def service_items_per_s(client: httpx.Client, count: int, batch_size: int) -> float:
    body = {"data": _items(count), "batch_size": batch_size, "parallel": True}
    started = time.perf_counter()
    response = client.post(API_URL_PATH, json=body, timeout=120)
    response.raise_for_status()
    elapsed = time.perf_counter() - started
    if response.json()["processed"] != count:
        raise SystemExit(f"bench: expected {count} results, got {response.json()['processed']}")
    return count / elapsed


def engine_items_per_s(count: int) -> float:
    pipeline = PipelineRegistry.load(None, hash_secret=b"bench").get("default")
    items = _items(count)
    started = time.perf_counter()
    for first in range(0, count, 100):
        pipeline.run(items[first : first + 100], first)
    return count / (time.perf_counter() - started)


def _row(name: str, value: str, floor: str, ratio: str) -> str:
    return f"{name:<52} {value:>12} {floor:>12} {ratio:>8}"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="batchline-bench-") as scratch:
        data = Path(scratch)
        kafka_port, api_port = local_broker.free_port(), local_broker.free_port()
        bootstrap = f"127.0.0.1:{kafka_port}"
        broker = local_broker.start(data / "kafka", kafka_port)
        children = [broker]
        try:
            local_broker.wait_ready(bootstrap, broker)
            env = {
                **os.environ,
                "BATCHLINE_KAFKA_BOOTSTRAP": bootstrap,
                "BATCHLINE_DATA_DIR": str(data),
                "BATCHLINE_STORE_URL": f"sqlite+aiosqlite:///{data / 'results.db'}",
                "BATCHLINE_WORKER_METRICS_PORT": "0",
                "BATCHLINE_LOG_LEVEL": "WARNING",
            }
            from tests.integration.stack import new_key  # the same key helper the tests use

            key = new_key(env["BATCHLINE_STORE_URL"], "bench")
            children.append(_spawn(["worker"], env))
            children.append(_spawn(["api", "--port", str(api_port)], env))
            url = f"http://127.0.0.1:{api_port}"
            _wait_api(url, children)
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
                service_latency_ms(client, 3)  # the worker joins its group on first traffic
                with quiet_collector():
                    latency = service_latency_ms(client, LATENCY_SAMPLES)
                throughput = service_items_per_s(client, THROUGHPUT_ITEMS, 100)
                throughput_large = service_items_per_s(client, THROUGHPUT_ITEMS, 1000)
            with quiet_collector():
                floor_latency = asyncio.run(kafka_round_trip_ms(bootstrap, LATENCY_SAMPLES))
            floor_throughput = engine_items_per_s(THROUGHPUT_ITEMS)
        finally:
            for child in reversed(children):
                _stop(child) if child is not broker else local_broker.stop(broker)
    p50, floor_p50 = statistics.median(latency), statistics.median(floor_latency)
    p95 = statistics.quantiles(latency, n=20)[18]
    floor_p95 = statistics.quantiles(floor_latency, n=20)[18]
    print(_row("service (1 worker, SQLite store)", "measured", "floor", "ratio"))
    print("-" * 87)
    print(
        _row(
            "1-item batch, sync, p50 (ms)",
            f"{p50:.1f}",
            f"{floor_p50:.1f}",
            f"{p50 / floor_p50:.1f}x",
        )
    )
    print(
        _row(
            "1-item batch, sync, p95 (ms)",
            f"{p95:.1f}",
            f"{floor_p95:.1f}",
            f"{p95 / floor_p95:.1f}x",
        )
    )
    for chunk_size, items_per_s in ((100, throughput), (1000, throughput_large)):
        print(
            _row(
                f"10,000-item batch, batch_size {chunk_size}, sync (items/s)",
                f"{items_per_s:,.0f}",
                f"{floor_throughput:,.0f}",
                f"{items_per_s / floor_throughput:.2f}x",
            )
        )
    print("floors: latency = bare aiokafka produce->consume round trip on the same broker;")
    print("        throughput = the transform engine alone on the same items, in process")
    sys.stdout.flush()


if __name__ == "__main__":
    Settings()  # fail early on a malformed BATCHLINE_* variable
    main()
