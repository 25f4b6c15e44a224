"""The driver's side of the streaming benchmarks: broker, topics, input, and reading outputs.

Every output topic stamps records with the broker's append time
(``message.timestamp.type=LogAppendTime``); broker time rather than the producer's, because
Quix Streams copies the input record's timestamp onto its outputs. Two timing rules, each
applied to every tool alike, both leaving start-up and group joining out:

- A (input waiting): the batch is on the topic before the tool starts; items of every output
  chunk but the first to appear / time from that first output record to the last. A tool that
  transforms many chunks before it sends the first output (Batchline's worker works in groups
  of up to 64 chunks, the aiokafka loop in fetches of up to 100) has part of its work before
  the first output, outside the measured time, so A flatters such tools, the more so the
  fewer chunks a batch has.
- B (input streamed to a warm tool): after A, with the same process, a second batch of the
  same items is produced; all its items / time from the start of producing to the last
  output. Nothing a tool does can fall outside that window; the driver's producer sets a
  ceiling, printed beside.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from batchline import broker as local_broker
from bench.anchors.common import MAX_MESSAGE_BYTES
from bench.bench_transforms import baseline
from schemas import jsonio
from streams.chunking import iter_chunks
from streams.topics import TopicNames, admin_client, ensure_topics

PARTITIONS = 4
TOOL_TIMEOUT_S = 900.0
READ_POLL_MS = 200
TOPIC_READY_TIMEOUT_S = 30.0
LOG_APPEND_TIME = 1  # ConsumerRecord.timestamp_type of a broker-stamped record
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a topic's own override
OUTPUT_TOPIC_CONFIG = {
    "message.timestamp.type": "LogAppendTime",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
}


class ToolFailed(RuntimeError):
    """A tool under test exited, timed out or wrote wrong outputs: it gets no figure."""


def run_id() -> str:
    """Unique per run, so that topics, groups and batch IDs never meet an earlier run's."""
    return f"{time.strftime('%H%M%S')}{uuid.uuid4().hex[:6]}"


@contextmanager
def local_kafka(bootstrap: str | None, scratch: Path) -> Iterator[str]:
    """The given broker, or a local one started here and stopped on the way out."""
    if bootstrap is not None:
        yield bootstrap
        return
    port = local_broker.free_port()
    process = local_broker.start(scratch / "kafka", port)
    try:
        local_broker.wait_ready(f"127.0.0.1:{port}", process)
        yield f"127.0.0.1:{port}"
    finally:
        local_broker.stop(process)


# --- input -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch as ChunkEvent messages, exactly as an event-driven producer writes them."""

    batch_id: str
    messages: list[tuple[bytes, bytes]]
    sizes: list[int]  # items per chunk, by chunk index

    @property
    def chunk_count(self) -> int:
        return len(self.messages)


def make_batch(batch_id: str, items: Sequence[Any], batch_size: int) -> Batch:
    messages = list(
        iter_chunks(
            batch_id=batch_id,
            items=items,
            batch_size=batch_size,
            parallel=True,
            pipeline="default",
            on_invalid="reject",
        )
    )
    sizes = [len(items[start : start + batch_size]) for start in range(0, len(items), batch_size)]
    return Batch(batch_id, messages, sizes)


async def produce(bootstrap: str, topic: str, batches: Iterable[Batch]) -> tuple[int, int]:
    """Writes the batches' messages; returns the wall-clock times (ms) of the first send and
    of the last acknowledgement, the producer's own start-up left out."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_MESSAGE_BYTES
    )
    await producer.start()
    try:
        started_ms = time.time_ns() // 1_000_000
        sends = [
            await producer.send(topic, value, key=key)
            for batch in batches
            for key, value in batch.messages
        ]
        await asyncio.gather(*sends)
        return started_ms, time.time_ns() // 1_000_000
    finally:
        await producer.stop()


# --- topics ------------------------------------------------------------------------------------


async def prepare_batchline_topics(bootstrap: str, prefix: str) -> TopicNames:
    """Batchline's topics, made before any producer or worker can auto-create them, with the
    results topic stamped by the broker like every anchor's output topic."""
    names = TopicNames(prefix)
    await ensure_topics(bootstrap, names, PARTITIONS)
    async with admin_client(bootstrap) as admin:
        resource = ConfigResource(ConfigResourceType.TOPIC, names.results)
        described = await admin.describe_configs([resource])
        # AlterConfigs replaces a topic's whole set of overrides: keep Batchline's own ones.
        overrides = {
            entry[0]: entry[1]
            for response in described
            for res in response.resources
            for entry in res[4]
            if entry[3] == DYNAMIC_TOPIC_CONFIG
        }
        overrides["message.timestamp.type"] = "LogAppendTime"
        altered = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, names.results, overrides)]
        )
    refused = [res for response in altered for res in response.resources if res[0]]
    if refused:
        raise ToolFailed(f"the broker refused to alter {names.results}: {refused}")
    return names


async def create_output_topics(bootstrap: str, names: Iterable[str]) -> None:
    topics = [NewTopic(name, PARTITIONS, 1, topic_configs=OUTPUT_TOPIC_CONFIG) for name in names]
    async with admin_client(bootstrap) as admin:
        await admin.create_topics(topics)
        # A new topic is listed before its partitions have leaders; a tool started now would
        # spend its first moments retrying, so wait until every partition can be written.
        # Metadata of all topics, as streams.topics does: asking for named topics would make
        # the broker try (and log) an auto-creation of those not yet fully published.
        deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            cluster = await admin._client.fetch_all_metadata()
            if all(
                len(cluster.available_partitions_for_topic(topic.name) or ()) == PARTITIONS
                for topic in topics
            ):
                return
            await asyncio.sleep(0.1)
    raise ToolFailed(f"output topics not ready in {TOPIC_READY_TIMEOUT_S:.0f} s")


# --- outputs -----------------------------------------------------------------------------------


class _Head(msgspec.Struct):
    """The two fields every output message starts with; msgspec skips the rest unparsed, so
    the reader's cost per record is small and the same for every tool."""

    batch_id: str
    chunk_index: int


ChunkId = tuple[str, int]


@dataclass(slots=True)
class Outputs:
    first_seen: dict[ChunkId, int] = field(default_factory=dict)  # broker time (ms) of 1st copy
    kept: dict[ChunkId, bytes] = field(default_factory=dict)  # values for the spot check


def spot_chunks(batch: Batch) -> set[ChunkId]:
    return {(batch.batch_id, 0), (batch.batch_id, batch.chunk_count - 1)}


async def read_outputs(
    bootstrap: str,
    topic: str,
    batches: Sequence[Batch],
    alive: Callable[[], bool],
    timeout_s: float = TOOL_TIMEOUT_S,
) -> Outputs:
    """Reads ``topic`` from the start until every chunk of ``batches`` has an output."""
    wanted = {batch.batch_id: batch.chunk_count for batch in batches}
    keep = set().union(*(spot_chunks(batch) for batch in batches))
    missing = sum(wanted.values())
    outputs = Outputs()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while missing:
            if not alive():
                raise ToolFailed(f"exited with {missing} output chunks still missing")
            if time.monotonic() > deadline:
                raise ToolFailed(f"{missing} output chunks still missing after {timeout_s:.0f} s")
            fetched = await consumer.getmany(timeout_ms=READ_POLL_MS)
            for record in (record for records in fetched.values() for record in records):
                if record.timestamp_type != LOG_APPEND_TIME:
                    raise ToolFailed(f"{topic} is not stamped with the broker's append time")
                try:
                    head = msgspec.json.decode(record.value, type=_Head)
                except msgspec.MsgspecError as exc:
                    raise ToolFailed(f"an output is not the expected JSON: {exc}") from None
                chunk = (head.batch_id, head.chunk_index)
                if head.batch_id not in wanted or chunk in outputs.first_seen:
                    continue  # another run's batch, or a chunk repeated after a crash
                if not 0 <= head.chunk_index < wanted[head.batch_id]:
                    raise ToolFailed(f"output for chunk {chunk}, which does not exist")
                outputs.first_seen[chunk] = record.timestamp
                missing -= 1
                if chunk in keep:
                    outputs.kept[chunk] = record.value
    finally:
        await consumer.stop()
    return outputs


def check_outputs(outputs: Outputs, batches: Sequence[Batch]) -> None:
    """Every chunk answered once at least, and the spot-checked ones equal the baseline."""
    for batch in batches:
        for chunk in sorted(spot_chunks(batch)):
            got = jsonio.loads(outputs.kept[chunk])
            source = jsonio.loads(batch.messages[chunk[1]][1])
            # The same JSON round trip as the tools' outputs, so Decimals compare by value.
            expected = jsonio.loads(jsonio.dumps([baseline(item) for item in source["items"]]))
            if (got["batch_id"], got["chunk_index"]) != chunk or got["results"] != expected:
                raise ToolFailed(f"output of chunk {chunk} differs from baseline(input)")
            if got.get("errors"):
                raise ToolFailed(f"output of chunk {chunk} reports errors: {got['errors'][:3]}")


def rate_after_first_output(outputs: Outputs, batches: Sequence[Batch]) -> float:
    """Rule A: items of every chunk but the first to be answered / first to last output."""
    sizes = _sizes(batches)
    first = min(outputs.first_seen, key=lambda chunk: outputs.first_seen[chunk])
    elapsed_ms = max(outputs.first_seen.values()) - outputs.first_seen[first]
    return (sum(sizes.values()) - sizes[first]) / max(elapsed_ms, 1) * 1000


def rate_since(outputs: Outputs, batches: Sequence[Batch], started_ms: int) -> float:
    """Rule B: all items / time from ``started_ms`` (the driver's clock when it began producing
    them, the same wall clock the broker stamps with on this host) to the last output."""
    elapsed_ms = max(outputs.first_seen.values()) - started_ms
    return sum(_sizes(batches).values()) / max(elapsed_ms, 1) * 1000


def _sizes(batches: Sequence[Batch]) -> dict[ChunkId, int]:
    return {
        (batch.batch_id, index): size for batch in batches for index, size in enumerate(batch.sizes)
    }


def percentile(samples: Sequence[float], q: int) -> float:
    """The q-th percentile, interpolated within the samples (never beyond the largest)."""
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


RULE_WAITING = (
    "A: batch on the topic before the tool starts; items of all output chunks but the first"
    " / time from the first output record to the last (broker append times)"
)
RULE_STREAMED = (
    "B: the same tool, warm, then the same items again as a new batch; items / time from the"
    " start of producing them to the last output record"
)
