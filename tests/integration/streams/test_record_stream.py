"""The record stream on a real broker (issue H point 2): records in on <prefix>.records, one out
for each on <prefix>.record-results, keyed as they came; invalid ones dead-lettered with field
errors and no values."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer

from schemas import jsonio
from schemas.events import DeadLetterEvent, decode
from streams.topics import TopicNames
from tests.integration.operations.scrape import samples, scrape, worker_metrics_url
from tests.integration.stack import ManagedProcess, StackFactory
from tests.integration.streams.kafka_io import produce, read_topic, synthetic_items

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
RECORDS = 200
PLANTED = "planted-7731@evil.example"
# streams.agents samples the lag every GAUGE_INTERVAL_S (5 s).
LAG_SAMPLED_WITHIN_S = 15.0


async def _outputs(
    bootstrap: str, topic: str, count: int
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    try:
        for _ in range(240):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend((r.key, r.value or b"", dict(r.headers)) for r in records)
            if len(found) >= count:
                break
    finally:
        await consumer.stop()
    return found


async def test_records_come_out_one_for_one_keyed_as_they_came(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    worker = stack.add_worker()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    items = synthetic_items(RECORDS)
    pipeline = [("batchline-pipeline", b"default@1")]
    messages = [
        (f"k{row}".encode(), jsonio.dumps(item), pipeline) for row, item in enumerate(items)
    ]
    invalid = {**items[0], "amt": PLANTED}
    messages.append((b"bad", jsonio.dumps(invalid), pipeline))
    await produce(kafka_bootstrap, topics.records, messages)

    out = await _outputs(kafka_bootstrap, topics.record_results, RECORDS)
    letters = await read_topic(
        kafka_bootstrap, topics.dead_letters, lambda found: len(found) >= 1, 60
    )

    assert len(out) == RECORDS, stack.logs()
    assert sorted(key or b"" for key, _, _ in out) == sorted(
        f"k{row}".encode() for row in range(RECORDS)
    )
    by_key = {key: (jsonio.loads(value), headers) for key, value, headers in out}
    first, headers = by_key[b"k0"]
    assert first["timestamp"].endswith("Z") and "@" in first["email"]
    assert first["email"] != items[0]["email"]  # masked
    assert headers["batchline-outcome"] == b"transformed"
    assert headers["batchline-pipeline"] == b"default@1"
    [letter] = [decode(DeadLetterEvent, value) for _, value in letters]
    assert (letter.code, letter.source_topic) == ("invalid_record", topics.records)
    assert letter.errors is not None
    assert [(e.field, e.reason) for e in letter.errors] == [("amount", "Invalid number format")]
    assert letter.errors[0].row == letter.source_offset
    assert all(PLANTED not in value.decode() for _, value in letters)
    # The worker reports its lag on the records topic beside the requests topic's.
    deadline = time.monotonic() + LAG_SAMPLED_WITHIN_S
    while not _lag_topics(worker) >= {topics.records, topics.requests}:
        assert time.monotonic() < deadline, _lag_topics(worker)
        await asyncio.sleep(0.5)


def _lag_topics(worker: ManagedProcess) -> set[str]:
    found = samples(scrape(worker_metrics_url(worker)))
    return {
        dict(labels)["topic"]
        for (name, labels), _ in found.items()
        if name == "batch_consumer_lag_messages"
    }
