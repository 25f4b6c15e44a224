"""A Faust app as a real worker process: it consumes a topic and updates a table."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.topics import admin_client

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
WORDS = ["kafka"] * 5 + ["faust"] * 3 + ["table"]


async def _latest_changelog_values(
    bootstrap: str, topic: str, want: dict[str, int]
) -> dict[str, int]:
    """Reads the table's changelog until it shows ``want`` (or 60 s pass)."""
    await _wait_for_topic(bootstrap, topic)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 60
    try:
        while seen != want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    assert record.key is not None and record.value is not None
                    seen[record.key.decode().strip('"')] = int(record.value)
    finally:
        await consumer.stop()
    return seen


async def _wait_for_topic(bootstrap: str, topic: str) -> None:
    # Subscribing first could auto-create the changelog with the broker's partition count,
    # which Faust would then refuse; so wait until the worker has declared it.
    async with admin_client(bootstrap) as admin:
        deadline = time.monotonic() + 60
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} never appeared"
            await asyncio.sleep(0.5)


async def test_worker_process_counts_words_into_its_table(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "COUNTER_BOOTSTRAP": kafka_bootstrap,
        "COUNTER_PREFIX": topic_prefix,
        "COUNTER_DATADIR": str(tmp_path / "faust"),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.foundation.faust_counter_app"], env=env
    )
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for word in WORDS:
                await producer.send_and_wait(f"{topic_prefix}.words", value=f'"{word}"'.encode())
        finally:
            await producer.stop()
        changelog = f"{topic_prefix}-app-counts-changelog"
        seen = await _latest_changelog_values(
            kafka_bootstrap, changelog, {"kafka": 5, "faust": 3, "table": 1}
        )
        assert seen == {"kafka": 5, "faust": 3, "table": 1}
        assert worker.poll() is None, "the worker died"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
