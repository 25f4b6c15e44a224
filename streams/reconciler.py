"""The reconciler: finishes batches whose chunks the stream never delivered or never counted.

Kafka keeps every chunk, but a consumer can still skip one: faust-streaming drops records whose
offset is below the last offset it read for a partition, which happens when records prefetched
before a rebalance arrive after the seek back to the committed offset (faust-streaming issues
#175 and #221). Such a chunk is never transformed, or its count never reaches the progress
table, and its batch would stay `processing` for ever. So one worker (the group leader) looks
every few seconds for unfinished batches without progress for BATCHLINE_RECONCILE_AFTER_S:

- every chunk is in the store but the batch is not final: it is finished from the store's
  per-chunk counts;
- chunks are missing: each is read again from the requests topic at the (partition, offset)
  the API recorded when it published, and transformed like any other delivery (idempotently).

Chunks written straight to Kafka by a producer have no recorded location; their batches can
only be finished from the store.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import BatchStatusEvent
from store import BatchRecord, ResultsStore
from streams.transform_agent import SourceMessage, handle_chunk

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)
FETCH_TIMEOUT_MS = 10_000


async def reconcile(sa: StreamsApp) -> int:
    """One pass; returns how many batches it acted on."""
    settings = sa.resources.settings
    store = await sa.resources.store()
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.reconcile_after_s)
    acted = 0
    for batch in await store.stalled_batches(cutoff):
        stored = await store.chunk_indexes(batch.batch_id)
        if batch.chunk_count and len(stored) >= batch.chunk_count:
            await _finish_from_store(sa, store, batch)
            acted += 1
            continue
        missing = set(range(batch.chunk_count)) - stored
        found = await store.chunk_locations(batch.batch_id, missing)
        if found:
            log.warning(
                "reconciler reads chunks again",
                extra={"batch_id": batch.batch_id, "chunks": len(found)},
            )
            await _redeliver(sa, found)
            acted += 1
    return acted


async def _finish_from_store(sa: StreamsApp, store: ResultsStore, batch: BatchRecord) -> None:
    processed = filtered = invalid = 0
    for first_row, results, errors in await store.chunk_summaries(batch.batch_id):
        items = min(batch.batch_size, batch.total - first_row)
        processed += results
        invalid += errors
        filtered += items - results
    now = datetime.now(UTC)
    finished = await store.finish_batch(
        batch.batch_id, "completed", processed, filtered, invalid, now
    )
    log.warning(
        "reconciler finished a batch from the store",
        extra={"batch_id": batch.batch_id, "finished_now": finished},
    )
    if finished:
        event = BatchStatusEvent(
            batch_id=batch.batch_id,
            status="completed",
            total=batch.total,
            processed=processed,
            filtered=filtered,
            invalid=invalid,
            chunks_done=batch.chunk_count,
            chunk_count=batch.chunk_count,
            at=now,
        )
        await sa.status.send(key=batch.batch_id.encode(), value=event.to_bytes())


async def _redeliver(sa: StreamsApp, found: dict[int, tuple[int, int]]) -> None:
    topic = sa.topics.requests
    consumer = AIOKafkaConsumer(
        bootstrap_servers=sa.resources.settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        for _, (partition, offset) in sorted(found.items()):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
            for record in batches.get(tp, []):
                if record.offset == offset and record.value is not None:
                    await handle_chunk(
                        sa, SourceMessage(topic, partition, offset, record.key, record.value)
                    )
    finally:
        await consumer.stop()
