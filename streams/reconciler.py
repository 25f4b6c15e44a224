"""The reconciler: finishes batches whose chunks the stream never delivered or never counted.

Kafka keeps every chunk, but a consumer can still skip one: faust-streaming drops records whose
offset is below the last offset it read for a partition, which happens when records prefetched
before a rebalance arrive after the seek back to the committed offset (faust-streaming issues
#175 and #221). Such a chunk is never transformed, or its count never reaches the progress
table, and its batch would stay `processing` for ever. So one worker (the group leader) looks
every few seconds for unfinished batches without progress for BATCHLINE_RECONCILE_AFTER_S:

- chunks are in the store but the batch is not final (their progress messages were lost): the
  stored chunks' counts are sent to the progress topic again, and the progress table (the one
  authority for counts) counts those it has not counted and ends the batch when all are in;
- chunks are missing: each is read again from the requests topic at the (partition, offset)
  the API recorded when it published, and transformed like any other delivery (idempotently);
  chunks without a recorded location (an event-driven producer's) are found by reading the
  requests topic, and the producer's own ingest topic, from shortly before the batch was
  registered;
- nothing of the batch exists anywhere long after its creation: it was never published and is
  failed, freeing its owner's slot;
- chunks are still missing BATCHLINE_MISSING_CHUNKS_AFTER_S after the batch's last progress
  (a producer that never sent them, or input aged out of the topic): the batch is failed
  through the progress table, its reason naming the missing chunk indexes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiokafka import TopicPartition

from schemas import jsonio
from schemas.events import ChunkFailedEvent
from store import BatchRecord
from streams.dead_letters import SourceMessage
from streams.finishing import BatchFinisher
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.located import FETCH_TIMEOUT_MS, chunk_reader, read_located
from streams.outputs import Outgoing, Outputs
from streams.owners import namespace_of
from streams.progress_handler import stored_counts_events
from streams.topics import TopicNames, topic_partitions
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)
# Stall periods after which a batch with no trace of publication is given up.
ABANDON_AFTER_STALLS = 10
NEVER_PUBLISHED_REASON = "The batch was never fully published; submit it again"
# How far before a batch's registration its chunks may have been produced (a producer's batch is
# registered by the worker that transforms its first chunk, possibly long after).
SCAN_MARGIN = timedelta(hours=1)
DEFAULT_MISSING_AFTER_S = 600.0
# Missing chunk indexes named in a batch's reason, at most.
NAMED_MISSING = 20


def missing_chunks_reason(missing: Collection[int], chunk_count: int, after_s: float) -> str:
    """Numbers only: "Chunks 2, 5 of 6 never arrived within 600 s"."""
    first = sorted(missing)[:NAMED_MISSING]
    more = len(missing) - len(first)
    named = ", ".join(str(index) for index in first) + (f" and {more} more" if more else "")
    noun = "Chunk" if len(missing) == 1 else "Chunks"
    return f"{noun} {named} of {chunk_count} never arrived within {after_s:g} s"


class ReconcilerStore(Protocol):
    async def stalled_batches(self, cutoff: datetime, limit: int = 100) -> list[BatchRecord]: ...

    async def chunk_indexes(self, batch_id: str) -> set[int]: ...

    async def chunk_summaries(self, batch_id: str) -> list[tuple[int, int, int]]: ...

    async def chunk_locations(
        self, batch_id: str, indexes: Collection[int]
    ) -> dict[int, tuple[int, int]]: ...

    async def abandon_batch(self, batch_id: str, reason: str) -> None: ...


class ChunkRunner(Protocol):
    async def handle(self, messages: list[SourceMessage]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Reconciler:
    store: ReconcilerStore
    chunks: ChunkRunner
    outputs: Outputs
    finisher: BatchFinisher
    metrics: Metrics
    topics: TopicNames
    bootstrap: str
    stall_s: float
    security: KafkaSecurity = PLAINTEXT
    missing_after_s: float = DEFAULT_MISSING_AFTER_S

    async def run_once(self) -> int:
        """One pass; returns how many batches it acted on."""
        now = datetime.now(UTC)
        cutoff = now - timedelta(seconds=self.stall_s)
        abandon_before = now - ABANDON_AFTER_STALLS * timedelta(seconds=self.stall_s)
        overdue = {
            batch.batch_id
            for batch in await self.store.stalled_batches(
                now - timedelta(seconds=self.missing_after_s)
            )
        }
        acted = 0
        for batch in await self.store.stalled_batches(cutoff):
            stored = await self.store.chunk_indexes(batch.batch_id)
            missing = set(range(batch.chunk_count)) - stored
            if stored and missing and batch.batch_id in overdue:
                await self._fail_missing(batch, missing)
                acted += 1
                continue
            if stored:
                await self._reannounce(batch)
            found = await self.store.chunk_locations(batch.batch_id, missing) if missing else {}
            if found:
                log.warning(
                    "reconciler reads chunks again",
                    extra={"batch_id": batch.batch_id, "chunks": len(found)},
                )
                await self._redeliver(found)
                self.metrics.reconciler_repairs.labels(action="redelivered").inc()
            elif await self._scan_for_chunks(batch, missing):
                log.warning("reconciler found skipped chunks", extra={"batch_id": batch.batch_id})
                self.metrics.reconciler_repairs.labels(action="redelivered").inc()
            elif not stored and batch.created_at < abandon_before:
                # The API records where the chunks went right after publishing them; a batch
                # with neither locations, results nor chunks on the topic this long after its
                # creation was never published (its API process died half-way). Failing it
                # frees the key's slot and lets a retry with the same Idempotency-Key start
                # afresh.
                await self.store.abandon_batch(batch.batch_id, NEVER_PUBLISHED_REASON)
                await self.finisher.announce(batch.batch_id)
                self.metrics.reconciler_repairs.labels(action="abandoned").inc()
                log.warning(
                    "reconciler failed a batch never published", extra={"batch_id": batch.batch_id}
                )
            elif not stored:
                continue
            acted += 1
        return acted

    async def _fail_missing(self, batch: BatchRecord, missing: Collection[int]) -> None:
        """Fails the batch through the progress table (the one authority for its end)."""
        reason = missing_chunks_reason(missing, batch.chunk_count, self.missing_after_s)
        event = ChunkFailedEvent(batch_id=batch.batch_id, reason=reason, at=datetime.now(UTC))
        key = batch.batch_id.encode()
        await self.outputs.send([Outgoing(self.topics.progress, key, event.to_bytes())])
        self.metrics.reconciler_repairs.labels(action="failed_missing").inc()
        log.warning(
            "reconciler failed a batch missing chunks",
            extra={"batch_id": batch.batch_id, "missing": len(missing)},
        )

    async def _reannounce(self, batch: BatchRecord) -> None:
        """Sends the stored chunks' counts to the progress table again; it counts only those it
        has not counted, and ends the batch once every chunk is in."""
        summaries = await self.store.chunk_summaries(batch.batch_id)
        events = stored_counts_events(batch, summaries, datetime.now(UTC))
        key = batch.batch_id.encode()
        await self.outputs.send(
            [Outgoing(self.topics.progress, key, event.to_bytes()) for event in events]
        )
        self.metrics.reconciler_repairs.labels(action="reannounced").inc()
        log.warning(
            "reconciler counts stored chunks again",
            extra={"batch_id": batch.batch_id, "chunks": len(summaries)},
        )

    async def _redeliver(self, found: dict[int, tuple[int, int]]) -> None:
        located = await read_located(self.bootstrap, self.security, self.topics.requests, found)
        for _, message in sorted(located.items()):
            await self.chunks.handle([message])

    async def _scan_for_chunks(self, batch: BatchRecord, missing: set[int]) -> bool:
        """Reads the requests topic (and for a producer's batch, its own ingest topic) from a
        while before the batch was registered to its current end, and transforms the batch's
        chunks that are not stored yet. For chunks whose location was never recorded: those of
        event-driven producers, or of an API that died right after publishing. True if any
        chunk was found."""
        if not missing:
            return False
        topics = [self.topics.requests]
        namespace = namespace_of(batch.batch_id)
        if namespace is not None:
            topics.append(self.topics.ingest(namespace))
        since_ms = int((batch.created_at - SCAN_MARGIN).timestamp() * 1000)
        found = 0
        for topic in topics:
            found += await self._scan_topic(topic, batch.batch_id.encode(), since_ms, missing)
        return found > 0

    async def _scan_topic(self, topic: str, key: bytes, since_ms: int, missing: set[int]) -> int:
        """How many of the ``missing`` chunks keyed ``key`` ``topic`` held since ``since_ms``
        (each transformed as it is found); 0 for a topic that does not exist."""
        consumer = chunk_reader(self.bootstrap, self.security)
        await consumer.start()
        found = 0
        try:
            partitions = [
                TopicPartition(topic, p)
                for p in await topic_partitions(self.bootstrap, topic, self.security)
            ]
            if not partitions:
                return 0
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
                        if _chunk_index(record.key, record.value) in missing:
                            await self.chunks.handle([_source(topic, tp.partition, record)])
                            found += 1
        finally:
            await consumer.stop()
        return found


def _source(topic: str, partition: int, record: Any) -> SourceMessage:
    """A consumed record (aiokafka's ConsumerRecord, untyped) as the handler takes it."""
    return SourceMessage(
        topic, partition, record.offset, record.key, record.value, tuple(record.headers or ())
    )


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
