"""Chunks from a stranger with access to the broker: refused, dead-lettered, and harmless."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import httpx
import pytest

from schemas import jsonio
from schemas.events import ChunkEvent, DeadLetterEvent, decode
from store import ResultsStore
from streams.topics import TopicNames
from streams.transform_service import (
    FETCH_PARTITION_BYTES,
    FETCH_TOTAL_BYTES,
    GROUP_MAX_CHUNKS,
)
from tests.integration.api.client import (
    BATCH_PATH,
    RESPOND_ASYNC,
    api_client,
    numbered_items,
    submit_async,
    wait_finished,
)
from tests.integration.operations.scrape import samples, scrape, worker_metrics_url
from tests.integration.stack import StackFactory, new_key
from tests.integration.streams.kafka_io import (
    final_status,
    produce,
    publish_batch,
    read_topic,
    synthetic_items,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ATTACKER_EMAIL = "attacker-planted@evil.example"


def _forged(batch_id: str, index: int, count: int, total: int, size: int) -> bytes:
    items = [
        {
            "ts": "2024-01-01T00:00:00Z",
            "amt": "666.66",
            "email": ATTACKER_EMAIL,
            "phone": "555-6666",
        }
        for _ in range(size)
    ]
    return ChunkEvent(
        batch_id=batch_id,
        chunk_index=index,
        chunk_count=count,
        first_row=index * size,
        total=total,
        items=items,
    ).to_bytes()


async def _dead_letters(bootstrap: str, topic: str, at_least: int) -> list[DeadLetterEvent]:
    messages = await read_topic(bootstrap, topic, lambda found: len(found) >= at_least, 60)
    return [decode(DeadLetterEvent, value) for _, value in messages]


async def _stored_results(store_url: str, batch_id: str) -> list[Any]:
    store = await ResultsStore.connect(store_url)
    try:
        return [item async for item in store.iter_results(batch_id)]
    finally:
        await store.close()


async def test_a_strangers_chunks_for_a_running_batch_are_dead_lettered_and_change_nothing(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    total, size = 3_000, 10
    count = math.ceil(total / size)
    with api_client(url, stack.api_key) as client:
        body = {"data": numbered_items(total), "batch_size": size, "parallel": False}
        victim = submit_async(client, body)
        # The stranger read the batch ID off the requests topic and writes while it runs: rows
        # at an index not processed yet, rows past the total, and rows past the last chunk.
        await produce(
            kafka_bootstrap,
            topics.requests,
            [
                (victim.encode(), _forged(victim, count - 1, count, total, size)),
                (victim.encode(), _forged(victim, count, count + 1, total + size, size)),
                (f"{victim}/x".encode(), b"\x00 not json"),
            ],
        )
        status = await asyncio.to_thread(wait_finished, client, victim, stack.logs())
        response = client.get(f"{BATCH_PATH}/{victim}/results", params={"limit": 10_000})
        results = jsonio.loads(response.content)

    assert (status["status"], status["processed"], status["filtered"]) == ("completed", total, 0)
    amounts = [str(row["amount"]) for row in results["results"]]
    assert amounts == [f"{row}.50" for row in range(total)]
    stored = await _stored_results(stack.store_url, victim)
    assert len(stored) == total
    assert all(ATTACKER_EMAIL[1:5] not in jsonio.dumps_str(row) for row in stored)
    letters = await _dead_letters(kafka_bootstrap, topics.dead_letters, 3)
    assert sorted(letter.code for letter in letters) == [
        "bad_signature",
        "bad_signature",
        "undecodable",
    ]
    # The undecodable message names no batch, so it could fail none.
    assert [letter.batch_id for letter in letters if letter.code == "undecodable"] == [None]


async def test_a_chunk_index_of_2_to_the_63_is_dead_lettered_and_the_next_batch_completes(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    poison, good = f"p-{uuid.uuid4().hex}", f"g-{uuid.uuid4().hex}"
    huge = {
        "schema_version": 1,
        "batch_id": poison,
        "chunk_index": 2**63,
        "chunk_count": 2**63 + 1,
        "first_row": 0,
        "total": 1,
        "items": synthetic_items(1),
    }
    await produce(kafka_bootstrap, topics.requests, [(poison.encode(), jsonio.dumps(huge))])
    await publish_batch(kafka_bootstrap, topics.requests, good, synthetic_items(10), parallel=False)

    event = await final_status(kafka_bootstrap, topics.status, good, timeout_s=60)
    assert event is not None, stack.logs()
    assert (event.status, event.processed) == ("completed", 10)
    letters = await _dead_letters(kafka_bootstrap, topics.dead_letters, 1)
    assert [letter.code for letter in letters] == ["invalid_chunk"]
    store = await ResultsStore.connect(stack.store_url)
    try:
        assert await store.get_batch(poison) is None
    finally:
        await store.close()


async def test_a_thousand_chunk_backlog_takes_about_one_store_transaction_per_group(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="600")
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    batch_id, chunks = f"b-{uuid.uuid4().hex}", 1_000
    # Waiting before the worker starts, so that it reads full groups.
    await publish_batch(
        kafka_bootstrap, topics.requests, batch_id, synthetic_items(chunks * 2), batch_size=2
    )
    worker = stack.add_worker()

    event = await final_status(kafka_bootstrap, topics.status, batch_id, timeout_s=120)
    assert event is not None, stack.logs()
    assert (event.status, event.chunks_done) == ("completed", chunks)
    found = samples(scrape(worker_metrics_url(worker)))
    transactions = found[("batch_store_transactions_total", (("kind", "chunk_group"),))]
    groups = found[("batch_chunk_group_size_count", ())]
    grouped_chunks = found[("batch_chunk_group_size_sum", ())]
    assert grouped_chunks == chunks  # every chunk once: a clean run redoes nothing
    assert transactions == groups
    # A full group is GROUP_MAX_CHUNKS chunks; the first fetches of a fresh consumer may be
    # smaller, so allow a few times the ideal count (1,000 chunks one at a time would be 1,000).
    assert transactions <= 4 * math.ceil(chunks / GROUP_MAX_CHUNKS), (transactions, groups)
    repairs = [v for (name, _), v in found.items() if name == "batch_reconciler_repairs_total"]
    assert sum(repairs) == 0  # a run without crashes needs no repair


async def test_sixteen_batches_from_eight_clients_complete_with_no_repair(
    make_stack: StackFactory,
) -> None:
    # The reconciler would hide a lost progress message after 30 s: give it no chance.
    stack = make_stack(BATCHLINE_RECONCILE_AFTER_S="600")
    worker = stack.add_worker()
    url = stack.add_api()
    keys = [new_key(stack.store_url, f"client-{n}-{uuid.uuid4().hex[:6]}") for n in range(8)]
    body = jsonio.dumps({"data": numbered_items(10_000), "batch_size": 500, "parallel": True})

    async def one_client(key: str) -> list[str]:
        headers = {"X-API-Key": key, "Content-Type": "application/json", **RESPOND_ASYNC}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
            return [
                (await client.post(BATCH_PATH, content=body)).json()["batch_id"] for _ in range(2)
            ]

    submitted = await asyncio.gather(*(one_client(key) for key in keys))
    store = await ResultsStore.connect(stack.store_url)
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            batches = await store.get_batches([b for pair in submitted for b in pair])
            if all(batch.finished for batch in batches.values()):
                break
            assert asyncio.get_running_loop().time() < deadline, stack.logs()
            await asyncio.sleep(0.5)
    finally:
        await store.close()

    assert len(batches) == 16
    assert {(b.status, b.processed) for b in batches.values()} == {("completed", 10_000)}
    found = samples(scrape(worker_metrics_url(worker)))
    repairs = [v for (name, _), v in found.items() if name == "batch_reconciler_repairs_total"]
    assert sum(repairs) == 0


async def test_a_ten_thousand_item_chunk_larger_than_any_fetch_comes_through_whole(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    batch_id = f"b-{uuid.uuid4().hex}"
    # An extra field the pipeline drops makes the chunk about 7 MB: over both fetch limits.
    items = [{**item, "note": "n" * 600} for item in synthetic_items(10_000)]
    assert len(jsonio.dumps(items)) > FETCH_TOTAL_BYTES > FETCH_PARTITION_BYTES
    await publish_batch(kafka_bootstrap, topics.requests, batch_id, items, batch_size=10_000)

    event = await final_status(kafka_bootstrap, topics.status, batch_id, timeout_s=60)
    assert event is not None, stack.logs()
    assert (event.status, event.processed) == ("completed", 10_000)
