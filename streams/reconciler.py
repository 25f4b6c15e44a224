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
  the API recorded when it published, and transformed like any other delivery (idempotently);
  chunks without a recorded location (an event-driven producer's) are found by reading the
  requests topic from shortly before the batch was registered;
- nothing of the batch exists anywhere long after its creation: it was never published and is
  failed, freeing its owner's slot.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import jsonio
from store import BatchRecord, ResultsStore, counts_from_chunks
from streams.progress_agent import REJECTED_REASON, announce_stored
from streams.topics import MAX_MESSAGE_BYTES, topic_partitions
from streams.transform_agent import SourceMessage, handle_chunk

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)
FETCH_TIMEOUT_MS = 10_000
# Stall periods after which a batch with no trace of publication is given up.
ABANDON_AFTER_STALLS = 10
NEVER_PUBLISHED_REASON = "The batch was never fully published; submit it again"
# How far before a batch's registration its chunks may have been produced (a producer's batch is
# registered by the worker that transforms its first chunk, possibly long after).
SCAN_MARGIN = timedelta(hours=1)


async def reconcile(sa: StreamsApp) -> int:
    """One pass; returns how many batches it acted on."""
    settings = sa.resources.settings
    store = await sa.resources.store()
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.reconcile_after_s)
    abandon_before = now - ABANDON_AFTER_STALLS * timedelta(seconds=settings.reconcile_after_s)
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
        elif await _scan_for_chunks(sa, batch, missing):
            log.warning("reconciler found skipped chunks", extra={"batch_id": batch.batch_id})
        elif not stored and batch.created_at < abandon_before:
            # The API records where the chunks went right after publishing them; a batch with
            # neither locations, results nor chunks on the topic this long after its creation
            # was never published (its API process died half-way). Failing it frees the key's
            # slot and lets a retry with the same Idempotency-Key start afresh.
            await store.abandon_batch(batch.batch_id, NEVER_PUBLISHED_REASON)
            await announce_stored(sa, batch.batch_id)
            log.warning(
                "reconciler failed a batch never published", extra={"batch_id": batch.batch_id}
            )
        else:
            continue
        acted += 1
    return acted


async def _finish_from_store(sa: StreamsApp, store: ResultsStore, batch: BatchRecord) -> None:
    counts = counts_from_chunks(batch, await store.chunk_summaries(batch.batch_id))
    processed, filtered, invalid = counts.processed, counts.filtered, counts.invalid
    rejected = invalid > 0 and batch.on_invalid == "reject"
    finished = await store.finish_batch(
        batch.batch_id,
        "failed" if rejected else "completed",
        processed,
        filtered,
        invalid,
        datetime.now(UTC),
        REJECTED_REASON if rejected else None,
    )
    log.warning(
        "reconciler finished a batch from the store",
        extra={"batch_id": batch.batch_id, "finished_now": finished},
    )
    await announce_stored(sa, batch.batch_id, chunks_done=batch.chunk_count)


def _reader(sa: StreamsApp) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=sa.resources.settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )


async def _redeliver(sa: StreamsApp, found: dict[int, tuple[int, int]]) -> None:
    topic = sa.topics.requests
    consumer = _reader(sa)
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


async def _scan_for_chunks(sa: StreamsApp, batch: BatchRecord, missing: set[int]) -> bool:
    """Reads the requests topic from a while before the batch was registered to its current
    end, and transforms the batch's chunks that are not stored yet. For chunks whose location
    was never recorded: those of event-driven producers, or of an API that died right after
    publishing. True if any chunk was found."""
    if not missing:
        return False
    topic = sa.topics.requests
    key = batch.batch_id.encode()
    since_ms = int((batch.created_at - SCAN_MARGIN).timestamp() * 1000)
    consumer = _reader(sa)
    await consumer.start()
    found = 0
    try:
        bootstrap = sa.resources.settings.kafka_bootstrap
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        if not partitions:
            return False
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        for tp in partitions:
            start = starts.get(tp)
            if start is None:
                continue  # nothing on this partition since then
            consumer.seek(tp, start.offset)
            position = start.offset
            while position < ends[tp]:
                records = (await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)).get(tp, [])
                if not records:
                    break
                for record in records:
                    position = record.offset + 1
                    # Chunk keys are the batch ID, or the batch ID and the chunk index.
                    if record.key is None or record.value is None:
                        continue
                    if record.key != key and not record.key.startswith(key + b"/"):
                        continue
                    message = SourceMessage(
                        topic, tp.partition, record.offset, record.key, record.value
                    )
                    if _chunk_index(record.key, record.value) in missing:
                        await handle_chunk(sa, message)
                        found += 1
    finally:
        await consumer.stop()
    return found > 0


def _chunk_index(key: bytes, value: bytes) -> int | None:
    _, _, index = key.partition(b"/")
    if index.isdigit():
        return int(index)
    try:
        chunk = jsonio.loads(value)
    except jsonio.JSONDecodeError:
        return None
    found = chunk.get("chunk_index") if isinstance(chunk, dict) else None
    return found if isinstance(found, int) else None
