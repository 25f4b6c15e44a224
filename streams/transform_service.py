"""The requests-topic consumer: an aiokafka consumer run as a service of the Faust worker. The
record stream (streams.record_stream) runs on the same loop with a handler of its own.

Why not a Faust agent: the issue's measurement put a plain aiokafka loop at 2x a plain Faust
agent on chunks of 100 (bench/results.md has this machine's latest figures, where the two are
closer), and faust-streaming can skip records after a rebalance (upstream #175/#221), which the
reconciler had to repair 30 s later. Here offsets are committed by hand, only after a group's
effects are stored and acknowledged, so a crash or a rebalance redoes a group (harmlessly: every
effect is idempotent) and never skips one.

The loop overlaps work with a bound: while one group's store transaction and sends are in
flight, the next group is fetched, decoded and transformed; at most one more waits between
them, so memory stays flat however long the backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)

from streams.dead_letters import SourceMessage
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)
# Chunks read (and stored in one transaction) at most at a time. 64 cost the worker 25% more
# memory with 20 batches queued (bench.bench_http) for no throughput gain beyond the noise.
GROUP_MAX_CHUNKS = 32
FETCH_PARTITION_BYTES = 1024 * 1024
FETCH_TOTAL_BYTES = 4 * 1024 * 1024
# How long a fetch waits for the first record; records already buffered return at once.
FETCH_WAIT_MS = 200
# A worker that dies without leaving the group (kill -9, lost host) holds its partitions until
# its session expires: keep that short so that another worker takes over within seconds.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000
# How soon a consumer subscribed by pattern sees a topic created after it started (a producer's
# new ingest topic): its metadata is refreshed this often.
PATTERN_REFRESH_MS = 10_000
# A prepared group waits for the writer to take the previous one, and the next group is fetched
# only once it has: at most two groups (one being written, one prepared) are in memory.
QUEUED_GROUPS = 1
DRAIN_TIMEOUT_S = 5.0
RESTART_PAUSE_S = 1.0


G = TypeVar("G")


class GroupHandler(Protocol[G]):
    """Decides about a group of messages (``prepare``: CPU and reads only), then carries out
    the effects (``apply``: writes and sends, idempotent), so that the next group can be
    prepared while one is applied."""

    async def prepare(self, messages: Sequence[SourceMessage]) -> G: ...

    async def apply(self, group: G) -> None: ...


def transform_group_id(topic_prefix: str) -> str:
    return f"{topic_prefix}-transform"


@dataclass(slots=True)
class _Fetched(Generic[G]):
    group: G
    offsets: dict[TopicPartition, int]
    payload_bytes: int
    generation: int


class _DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Finish and commit what was read before the partitions go to another worker.
        await self._drain()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class TransformService(mode.Service, Generic[G]):
    """Reads a topic in groups and hands each group to its handler (the ChunkHandler for the
    requests topic), committing offsets only after the group's effects."""

    def __init__(
        self,
        *,
        handler: GroupHandler[G],
        metrics: Metrics,
        bootstrap: str,
        topic: str,
        group_id: str,
        security: KafkaSecurity = PLAINTEXT,
        pattern: bool = False,
    ) -> None:
        """``topic`` is a topic name, or with ``pattern`` a regex of topic names."""
        super().__init__()
        self._pattern = pattern
        self._handler = handler
        self._metrics = metrics
        self._topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **security.client_options(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Small fetches keep memory flat however long the backlog: aiokafka holds one
            # fetched batch per partition. A larger message still comes through whole (the
            # broker returns the first record batch of a partition even above these limits,
            # KIP-74); a test sends a 10,000-item chunk.
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            fetch_max_bytes=FETCH_TOTAL_BYTES,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            **({"metadata_max_age_ms": PATTERN_REFRESH_MS} if pattern else {}),
        )
        self._queue: asyncio.Queue[_Fetched[G]] = asyncio.Queue(maxsize=QUEUED_GROUPS)
        self._taken = asyncio.Event()
        # Bumped when a group's effects failed: groups fetched before are dropped uncommitted
        # and the reader goes back to the committed offsets.
        self._generation = 0
        # Offsets of groups whose effects are done, committed in the background so that the
        # writer need not wait a round trip per group: groups finish in fetch order, so the
        # latest offset of a partition covers every group before it.
        self._done: dict[TopicPartition, int] = {}
        self._commit_wanted = asyncio.Event()

    async def on_start(self) -> None:
        await self._consumer.start()
        listener = _DrainOnRevoke(self.drain)
        if self._pattern:
            self._consumer.subscribe(pattern=self._topic, listener=listener)
        else:
            self._consumer.subscribe([self._topic], listener=listener)
        self.add_future(self._read_loop())
        self.add_future(self._write_loop())
        self.add_future(self._commit_loop())

    async def on_stop(self) -> None:
        try:
            await self.drain()
        finally:
            await self._consumer.stop()

    async def drain(self) -> None:
        """Waits (boundedly) until every group read so far has been written and committed."""
        try:
            await asyncio.wait_for(self._queue.join(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            log.warning("groups still in flight at rebalance or stop; they will be redone")
        await self._commit_done()

    async def lag(self) -> dict[TopicPartition, int]:
        """Messages left to read on each partition this worker holds (highwater - position)."""
        lag = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            position = await self._consumer.position(tp)
            if highwater is not None and position is not None:
                lag[tp] = max(highwater - position, 0)
        return lag

    async def _read_loop(self) -> None:
        seen_generation = self._generation
        in_flight = self._metrics.memory.labels(kind="in_flight")
        while not self.should_stop:
            while not self._queue.empty():  # the writer has yet to take the last group
                self._taken.clear()
                await self._taken.wait()
            if seen_generation != self._generation:
                await asyncio.sleep(RESTART_PAUSE_S)
                await self._consumer.seek_to_committed()
                seen_generation = self._generation
            try:
                records = await self._consumer.getmany(
                    timeout_ms=FETCH_WAIT_MS, max_records=GROUP_MAX_CHUNKS
                )
            except ConsumerStoppedError:
                return
            if not records:
                continue
            messages = [
                SourceMessage(
                    tp.topic,
                    tp.partition,
                    record.offset,
                    record.key,
                    record.value,
                    tuple(record.headers or ()),
                )
                for tp, batch in records.items()
                for record in batch
                if record.value is not None
            ]
            offsets = {tp: batch[-1].offset + 1 for tp, batch in records.items() if batch}
            payload_bytes = sum(len(message.value) for message in messages)
            in_flight.inc(payload_bytes)
            try:
                group = await self._handler.prepare(messages)
            except Exception:
                in_flight.dec(payload_bytes)
                log.exception("chunk group could not be prepared; reading it again")
                self._generation += 1
                continue
            await self._queue.put(_Fetched(group, offsets, payload_bytes, seen_generation))

    async def _write_loop(self) -> None:
        in_flight = self._metrics.memory.labels(kind="in_flight")
        while not self.should_stop:
            fetched = await self._queue.get()
            self._taken.set()
            try:
                if fetched.generation == self._generation:
                    await self._handler.apply(fetched.group)
                    self._done.update(fetched.offsets)
                    self._commit_wanted.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Kafka or the store stayed away past every retry: nothing of this group is
                # committed, so it is read again from the committed offsets.
                log.warning(
                    "chunk group not written; reading it again",
                    extra={"error_type": type(exc).__name__},
                )
                self._generation += 1
            finally:
                in_flight.dec(fetched.payload_bytes)
                self._queue.task_done()

    async def _commit_loop(self) -> None:
        while not self.should_stop:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._commit_done()

    async def _commit_done(self) -> None:
        offsets, self._done = self._done, {}
        if offsets:
            await self._commit(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assigned = self._consumer.assignment()
        owned = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance took the partitions meanwhile; their new owner redoes the group.
            log.info("offsets not committed", extra={"error_type": type(exc).__name__})
