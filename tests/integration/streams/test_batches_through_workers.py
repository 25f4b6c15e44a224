"""Batches through real Faust worker processes: exact results, exact counts, crash, cancel."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from schemas.events import CancelCommand, DeadLetterEvent, decode
from store import ResultsStore
from streams.chunking import iter_chunks
from streams.topics import TopicNames
from tests.integration.stack import Stack, StackFactory
from tests.integration.streams.kafka_io import (
    amount_of_row,
    final_status,
    produce,
    publish_batch,
    read_topic,
    synthetic_items,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _stored_amounts(store_url: str, batch_id: str) -> list[object]:
    store = await ResultsStore.connect(store_url)
    try:
        return [item["amount"] async for item in store.iter_results(batch_id)]
    finally:
        await store.close()


async def _stored_batch(store_url: str, batch_id: str) -> object:
    store = await ResultsStore.connect(store_url)
    try:
        return await store.get_batch(batch_id)
    finally:
        await store.close()


async def _wait_for_stored_chunks(store_url: str, batch_id: str, at_least: int) -> None:
    store = await ResultsStore.connect(store_url)
    try:
        deadline = time.monotonic() + 120
        while len(await store.chunk_indexes(batch_id)) < at_least:
            assert time.monotonic() < deadline, f"fewer than {at_least} chunks stored in 120 s"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


def _topics(stack: Stack) -> TopicNames:
    return TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])


async def test_parallel_batch_through_two_workers_is_stored_once_in_item_order(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    stack.add_worker()
    topics, batch_id, total = _topics(stack), f"b-{uuid.uuid4().hex}", 10_000

    await publish_batch(kafka_bootstrap, topics.requests, batch_id, synthetic_items(total))
    event = await final_status(kafka_bootstrap, topics.status, batch_id)

    assert event is not None, stack.logs()
    assert event.status == "completed"
    assert event.processed + event.filtered == total
    assert (event.chunks_done, event.chunk_count) == (100, 100)
    assert await _stored_amounts(stack.store_url, batch_id) == [
        amount_of_row(row) for row in range(total)
    ]


async def test_batch_completes_exactly_once_when_a_worker_is_killed_halfway(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    victim = stack.add_worker("victim")
    stack.add_worker("survivor")
    topics, batch_id, total = _topics(stack), f"b-{uuid.uuid4().hex}", 50_000

    await publish_batch(kafka_bootstrap, topics.requests, batch_id, synthetic_items(total))
    await _wait_for_stored_chunks(stack.store_url, batch_id, at_least=250)
    victim.kill()
    stack.add_worker("replacement")
    event = await final_status(kafka_bootstrap, topics.status, batch_id, timeout_s=300)

    assert event is not None, stack.logs()
    assert (event.status, event.processed, event.filtered) == ("completed", total, 0)
    assert event.chunks_done == 500
    assert await _stored_amounts(stack.store_url, batch_id) == [
        amount_of_row(row) for row in range(total)
    ]
    batch = await _stored_batch(stack.store_url, batch_id)
    assert batch is not None
    assert (batch.status, batch.processed, batch.filtered) == ("completed", total, 0)  # type: ignore[attr-defined]


async def test_cancel_mid_batch_skips_the_remaining_chunks(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_LOG_LEVEL="DEBUG")  # "chunk skipped" is a DEBUG line
    stack.add_worker()
    topics, batch_id, total = _topics(stack), f"b-{uuid.uuid4().hex}", 50_000
    chunks = list(
        iter_chunks(
            batch_id=batch_id,
            items=synthetic_items(total),
            batch_size=100,
            parallel=False,
            pipeline="default",
            on_invalid="reject",
        )
    )

    # The first half arrives and is processed; the cancel lands; then the second half arrives.
    await produce(kafka_bootstrap, topics.requests, chunks[:250])
    await _wait_for_stored_chunks(stack.store_url, batch_id, at_least=250)
    command = CancelCommand(batch_id=batch_id, requested_at=datetime.now(UTC))
    await produce(kafka_bootstrap, topics.control, [(batch_id.encode(), command.to_bytes())])
    event = await final_status(kafka_bootstrap, topics.status, batch_id)

    assert event is not None, stack.logs()
    assert event.status == "cancelled"
    assert event.processed < total
    await produce(kafka_bootstrap, topics.requests, chunks[250:])
    # Let the worker run through the rest of the partition, then check nothing more was stored.
    await asyncio.sleep(5)
    stored = await _stored_amounts(stack.store_url, batch_id)
    assert stored == [amount_of_row(row) for row in range(25_000)]
    batch = await _stored_batch(stack.store_url, batch_id)
    assert batch is not None and batch.status == "cancelled"  # type: ignore[attr-defined]
    assert "chunk skipped" in stack.logs()


async def test_garbage_goes_to_dead_letters_and_the_next_batch_completes(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    topics, poisoned, good = _topics(stack), f"b-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"

    await produce(
        kafka_bootstrap,
        topics.requests,
        [(poisoned.encode(), b"\x00not json{"), (None, b'{"schema_version": 1, "items": 5}')],
    )
    await publish_batch(kafka_bootstrap, topics.requests, good, synthetic_items(10), parallel=False)

    good_event = await final_status(kafka_bootstrap, topics.status, good)
    assert good_event is not None, stack.logs()
    assert (good_event.status, good_event.processed) == ("completed", 10)
    letters = await read_topic(
        kafka_bootstrap, topics.dead_letters, lambda messages: len(messages) >= 2
    )
    decoded = [decode(DeadLetterEvent, value) for _, value in letters]
    # A message that does not decode proves nothing about the batch its key names: it fails
    # nobody's batch, and its dead letter names none.
    assert sorted(letter.code for letter in decoded) == ["invalid_chunk", "undecodable"]
    assert [letter.batch_id for letter in decoded] == [None, None]
    assert all(letter.source_topic == topics.requests for letter in decoded)
    assert all(b"not json" not in value for _, value in letters)
    assert await _stored_batch(stack.store_url, poisoned) is None
