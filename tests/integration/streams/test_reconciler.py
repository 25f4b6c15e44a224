"""The reconciler repairs batches whose chunks a consumer skipped or whose counts never arrived."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.security import hash_api_key
from store import BatchRecord, NewBatch, ResultsStore
from streams.chunking import iter_chunks
from streams.owners import producer_namespace
from streams.reconciler import NEVER_PUBLISHED_REASON
from streams.topics import TopicNames, ensure_producer_topics, ensure_topics
from streams.transform_service import transform_group_id
from tests.integration.stack import StackFactory, new_key
from tests.integration.store.builders import new_batch
from tests.integration.streams.kafka_io import (
    amount_of_row,
    final_status,
    produce,
    publish_batch,
    synthetic_items,
)
from tests.unit.streams.builders import items, owned_batch_id, owned_chunks

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ITEMS = 1000


async def _skip_everything_published(
    bootstrap: str, group: str, topic: str, partition_count: int
) -> None:
    """Commits the workers' group past every record on ``topic``: what a consumer that drops
    records ends up doing, here done on purpose before any worker runs."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


async def _wait_finished(client: httpx.AsyncClient, batch_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body: dict[str, object] = (await client.get(f"/api/v1/transform/batch/{batch_id}")).json()
        if body["status"] not in ("queued", "processing"):
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"batch {batch_id} did not finish in 90 s")


async def test_chunks_the_consumer_never_delivered_are_read_again_and_the_batch_completes(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="2")
    url = stack.add_api()
    prefix = stack.env["BATCHLINE_TOPIC_PREFIX"]
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": stack.api_key}, timeout=60
    ) as client:
        accepted = await client.post(
            "/api/v1/transform/batch",
            json={"data": synthetic_items(ITEMS), "batch_size": 100},
            headers={"Prefer": "respond-async"},
        )
        assert accepted.status_code == 202, accepted.text
        batch_id = accepted.json()["batch_id"]
        await _skip_everything_published(
            kafka_bootstrap,
            transform_group_id(prefix),
            TopicNames(prefix).requests,
            int(stack.env["BATCHLINE_PARTITIONS"]),
        )
        stack.add_worker()

        status = await _wait_finished(client, batch_id)
        results = await client.get(f"/api/v1/transform/batch/{batch_id}/results?limit=10000")

    assert (status["status"], status["processed"], status["filtered"]) == ("completed", ITEMS, 0)
    amounts = [item["amount"] for item in results.json()["results"]]
    assert amounts == [float(amount_of_row(row)) for row in range(ITEMS)]
    assert "reconciler reads chunks again" in stack.logs()


async def _stored_once_completed(store: ResultsStore, batch_id: str) -> BatchRecord | None:
    """The stored batch once it is completed, or as it is after 90 s."""
    deadline = time.monotonic() + 90
    batch = await store.get_batch(batch_id)
    while batch is not None and batch.status != "completed" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        batch = await store.get_batch(batch_id)
    return batch


async def _register_skipped(
    store: ResultsStore, batch_id: str, owner_key_id: str | None, pipeline: str, total: int
) -> None:
    """A producer's batch in chunks of 10, registered as a worker does on the first chunk it
    sees (every chunk was then skipped)."""
    batch = new_batch(
        batch_id=batch_id,
        owner_key_id=owner_key_id,
        pipeline_ref=pipeline,
        on_invalid="reject",
        total=total,
        chunk_count=total // 10,
        batch_size=10,
        created_at=datetime.now(UTC),
    )
    await store.ensure_batch(batch)


def _five_item_batch(batch_id: str, created_at: datetime) -> NewBatch:
    return new_batch(
        batch_id=batch_id,
        owner_key_id=None,
        on_invalid="skip",
        total=5,
        chunk_count=2,
        batch_size=3,
        created_at=created_at,
    )


async def test_stored_chunks_whose_counts_never_arrived_are_counted_again_and_end_the_batch(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="2")
    batch_id, never_published = f"b-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    store = await ResultsStore.connect(stack.store_url)
    try:
        # An API process that died between registering a batch and publishing it leaves this.
        await store.insert_batch(
            _five_item_batch(never_published, datetime.now(UTC) - timedelta(hours=1))
        )
        await store.insert_batch(_five_item_batch(batch_id, datetime.now(UTC)))
        await store.put_chunk(batch_id, 0, 0, [{"n": 0}, {"n": 1}], [])
        await store.put_chunk(batch_id, 1, 3, [{"n": 3}], [{"row": 4, "field": "f", "reason": "r"}])
        stack.add_worker()
        batch = await _stored_once_completed(store, batch_id)
        abandoned = await store.get_batch(never_published)
    finally:
        await store.close()

    assert batch is not None, stack.logs()
    assert (batch.status, batch.processed, batch.filtered, batch.invalid) == ("completed", 3, 2, 1)
    assert "reconciler counts stored chunks again" in stack.logs()
    assert abandoned is not None
    assert (abandoned.status, abandoned.reason) == ("failed", NEVER_PUBLISHED_REASON)


async def test_producer_chunks_the_consumer_skipped_are_found_on_the_topic(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="2")
    prefix = stack.env["BATCHLINE_TOPIC_PREFIX"]
    topics = TopicNames(prefix)
    partitions = int(stack.env["BATCHLINE_PARTITIONS"])
    await ensure_topics(kafka_bootstrap, topics, partitions)
    batch_id = f"b-{uuid.uuid4().hex}"
    # An event-driven producer's batch: no API, so no recorded chunk locations.
    await publish_batch(
        kafka_bootstrap, topics.requests, batch_id, synthetic_items(100), batch_size=10
    )
    await _skip_everything_published(
        kafka_bootstrap, transform_group_id(prefix), topics.requests, partitions
    )
    store = await ResultsStore.connect(stack.store_url)
    try:
        await _register_skipped(store, batch_id, None, "default", total=100)
        stack.add_worker()
        batch = await _stored_once_completed(store, batch_id)
        results = [item["amount"] async for item in store.iter_results(batch_id)]
    finally:
        await store.close()

    assert batch is not None and batch.status == "completed", stack.logs()
    assert (batch.processed, batch.filtered) == (100, 0)
    assert results == [amount_of_row(row) for row in range(100)]
    assert "reconciler found skipped chunks" in stack.logs()


async def test_chunks_skipped_on_a_producer_s_own_ingest_topic_are_found_there(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="2")
    prefix = stack.env["BATCHLINE_TOPIC_PREFIX"]
    topics = TopicNames(prefix)
    partitions = int(stack.env["BATCHLINE_PARTITIONS"])
    await ensure_topics(kafka_bootstrap, topics, partitions)
    api_key = new_key(stack.store_url, "orders")
    namespace = producer_namespace(hash_api_key(api_key))
    ingest, _ = await ensure_producer_topics(kafka_bootstrap, topics, namespace, partitions)
    batch_id = owned_batch_id(api_key, "orders-7")
    await produce(kafka_bootstrap, ingest, owned_chunks(api_key, batch_id, items(30), 10))
    await _skip_everything_published(
        kafka_bootstrap, transform_group_id(prefix), ingest, partitions
    )
    store = await ResultsStore.connect(stack.store_url)
    try:
        [key] = [k for k in await store.list_api_keys() if k.name == "orders"]
        await _register_skipped(store, batch_id, key.key_id, "default@1", total=30)
        stack.add_worker()
        batch = await _stored_once_completed(store, batch_id)
    finally:
        await store.close()

    assert batch is not None and batch.status == "completed", stack.logs()
    assert (batch.processed, batch.filtered) == (30, 0)
    assert "reconciler found skipped chunks" in stack.logs()


async def test_a_producer_batch_missing_a_chunk_fails_naming_it(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="1", BATCHLINE_MISSING_CHUNKS_AFTER_S="3")
    prefix = stack.env["BATCHLINE_TOPIC_PREFIX"]
    topics = TopicNames(prefix)
    await ensure_topics(kafka_bootstrap, topics, int(stack.env["BATCHLINE_PARTITIONS"]))
    batch_id = f"b-{uuid.uuid4().hex}"
    chunks = list(
        iter_chunks(
            batch_id=batch_id,
            items=synthetic_items(30),
            batch_size=10,
            parallel=True,
            pipeline="default",
            on_invalid="reject",
        )
    )
    stack.add_worker()
    await produce(kafka_bootstrap, topics.requests, [chunks[0], chunks[2]])  # chunk 1 never comes

    status = await final_status(kafka_bootstrap, topics.status, batch_id, timeout_s=90)

    assert status is not None, stack.logs()
    assert (status.status, status.reason) == (
        "failed",
        "Chunk 1 of 3 never arrived within 3 s",
    ), stack.logs()
    assert "reconciler failed a batch missing chunks" in stack.logs()
