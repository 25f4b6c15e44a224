"""A produce/consume round trip through the real broker with aiokafka."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.kafka


async def test_message_produced_is_consumed_with_key_and_value(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.roundtrip"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)]
        for key, value in sent:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}-group",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        received: list[tuple[bytes | None, bytes | None]] = []
        while len(received) < len(sent):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no message arrived within 10 s"
            for records in batch.values():
                received.extend((record.key, record.value) for record in records)
    finally:
        await consumer.stop()
    assert sorted(received) == sorted(sent)
