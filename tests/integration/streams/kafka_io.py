"""Talking to the topics directly, as an event-driven producer or an outside consumer would."""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from schemas import jsonio
from schemas.events import BatchStatusEvent, decode
from streams.chunking import iter_chunks
from streams.signing import Headers
from streams.topics import admin_client

MAX_REQUEST_BYTES = 32 * 1024 * 1024


def synthetic_items(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Records whose amount encodes their row, so order and uniqueness can be checked."""
    return [
        {
            "ts": 1_700_000_000 + row,
            "amt": f"{row}.{row % 100:02d}",
            "email": f"user{row}@example.com",
            "phone": f"555-{row % 10_000:04d}",
        }
        for row in range(start, start + count)
    ]


def amount_of_row(row: int) -> Decimal:
    return Decimal(f"{row}.{row % 100:02d}")


async def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes] | tuple[bytes | None, bytes, Headers]],
) -> None:
    """Sends (key, value) or (key, value, headers) messages and waits for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_REQUEST_BYTES
    )
    await producer.start()
    try:
        futures = []
        for key, value, *more in messages:
            headers = list(more[0]) if more else None
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
        for future in futures:
            await future
    finally:
        await producer.stop()


async def publish_batch(
    bootstrap: str,
    topic: str,
    batch_id: str,
    items: Sequence[Any],
    *,
    batch_size: int = 100,
    parallel: bool = True,
    on_invalid: str = "reject",
) -> None:
    messages = list(
        iter_chunks(
            batch_id=batch_id,
            items=items,
            batch_size=batch_size,
            parallel=parallel,
            pipeline="default",
            on_invalid=on_invalid,  # type: ignore[arg-type]
        )
    )
    await produce(bootstrap, topic, messages)


async def read_topic(
    bootstrap: str, topic: str, until: Any, timeout_s: float = 120.0
) -> list[tuple[bytes | None, bytes]]:
    """Reads ``topic`` from the start until ``until(messages)`` is true (or the time runs out)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    messages: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(messages) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                messages.extend((r.key, r.value) for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return messages


async def final_status(
    bootstrap: str, topic: str, batch_id: str, timeout_s: float = 180.0
) -> BatchStatusEvent | None:
    """The batch's final status event (queued and processing ones come before it)."""
    events = await status_events(bootstrap, topic, batch_id, timeout_s)
    return events[-1] if events and events[-1].status in FINAL_STATUSES else None


async def status_events(
    bootstrap: str, topic: str, batch_id: str, timeout_s: float = 180.0
) -> list[BatchStatusEvent]:
    """Every status event of the batch, in topic order, up to its final one."""

    def of_batch(messages: list[tuple[bytes | None, bytes]]) -> list[BatchStatusEvent]:
        key = batch_id.encode()
        return [decode(BatchStatusEvent, value) for k, value in messages if k == key]

    def finished(messages: list[tuple[bytes | None, bytes]]) -> bool:
        return any(event.status in FINAL_STATUSES for event in of_batch(messages))

    return of_batch(await read_topic(bootstrap, topic, finished, timeout_s))


def loads(value: bytes) -> Any:
    return jsonio.loads(value)


FINAL_STATUSES = frozenset({"completed", "cancelled", "failed"})
# Kafka's stock limit; the brokers Batchline starts default to streams.topics.MAX_MESSAGE_BYTES.
KAFKA_STOCK_MESSAGE_BYTES = "1048588"


async def create_topic(bootstrap: str, topic: str, partitions: int, config: dict[str, str]) -> None:
    """Makes a topic as a platform team's tooling would, before Batchline ever sees it."""
    async with admin_client(bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=config)])
