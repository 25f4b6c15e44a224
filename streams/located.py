"""Reading chunks back from the requests topic where they were published.

The API records each chunk's (partition, offset) as it publishes it. The reconciler reads them
again to transform chunks a consumer skipped; replay and retry read them to run a batch again.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.dead_letters import SourceMessage
from streams.kafka_security import KafkaSecurity
from streams.topics import MAX_MESSAGE_BYTES

FETCH_TIMEOUT_MS = 10_000
Location = tuple[int, int]  # (partition, offset)


def chunk_reader(bootstrap: str, security: KafkaSecurity) -> AIOKafkaConsumer:
    """A consumer outside any group, for reading chunks (up to the largest message) back by
    hand: assign, seek, fetch."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **security.client_options(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
    )


async def read_located(
    bootstrap: str, security: KafkaSecurity, topic: str, locations: Mapping[int, Location]
) -> dict[int, SourceMessage]:
    """The record at each location, by chunk index. A location whose record is no longer on
    the topic (older than its retention) is left out, without waiting for it."""
    consumer = chunk_reader(bootstrap, security)
    await consumer.start()
    try:
        partitions = sorted({TopicPartition(topic, part) for part, _ in locations.values()})
        consumer.assign(partitions)
        first_kept = await consumer.beginning_offsets(partitions)
        found: dict[int, SourceMessage] = {}
        for index, (part, offset) in sorted(locations.items(), key=lambda item: item[1]):
            tp = TopicPartition(topic, part)
            if offset < first_kept[tp]:
                continue
            consumer.seek(tp, offset)
            fetched = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
            for record in fetched.get(tp, []):
                if record.offset == offset and record.value is not None:
                    headers = tuple(record.headers or ())
                    found[index] = SourceMessage(
                        topic, part, offset, record.key, record.value, headers
                    )
        return found
    finally:
        await consumer.stop()
