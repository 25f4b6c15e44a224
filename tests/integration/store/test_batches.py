"""Batch lifecycle: insert, idempotency, listing, status changes, deletion and purge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.statuses import BatchStatus
from store import (
    DuplicateIdempotencyKey,
    ResultsStore,
    StoreError,
    TooManyUnfinished,
)
from tests.integration.store.builders import BASE_TIME, StoreTarget, at, new_batch


async def test_insert_batch_returns_a_queued_record_that_get_batch_reads_back(
    store: ResultsStore,
) -> None:
    batch = new_batch(metadata={"source": "crm", "note": "ünïcode"}, idempotency_key="k1")

    inserted = await store.insert_batch(batch)

    assert inserted.status == BatchStatus.QUEUED
    assert (inserted.processed, inserted.filtered, inserted.invalid) == (0, 0, 0)
    assert inserted.started_at is None and inserted.completed_at is None
    assert inserted.metadata == {"source": "crm", "note": "ünïcode"}
    assert await store.get_batch(batch.batch_id) == inserted


async def test_get_batch_of_an_unknown_id_returns_none(store: ResultsStore) -> None:
    assert await store.get_batch("no-such-batch") is None


async def test_reused_idempotency_key_raises_with_the_existing_batch(store: ResultsStore) -> None:
    first = await store.insert_batch(new_batch(idempotency_key="same", request_digest="d1"))

    with pytest.raises(DuplicateIdempotencyKey) as raised:
        await store.insert_batch(new_batch(idempotency_key="same", request_digest="d2"))

    assert raised.value.existing == first
    assert await store.find_by_idempotency_key("key-a", "same") == first
    assert (await store.list_batches(None, 0, 10))[1] == 1


async def test_same_idempotency_key_for_different_owners_creates_two_batches(
    store: ResultsStore,
) -> None:
    a = await store.insert_batch(new_batch(owner_key_id="key-a", idempotency_key="same"))
    b = await store.insert_batch(new_batch(owner_key_id="key-b", idempotency_key="same"))

    assert await store.find_by_idempotency_key("key-a", "same") == a
    assert await store.find_by_idempotency_key("key-b", "same") == b


async def test_idempotency_key_without_an_owner_is_still_unique(store: ResultsStore) -> None:
    first = await store.insert_batch(new_batch(owner_key_id=None, idempotency_key="anon"))

    with pytest.raises(DuplicateIdempotencyKey) as raised:
        await store.insert_batch(new_batch(owner_key_id=None, idempotency_key="anon"))

    assert raised.value.existing == first
    assert await store.find_by_idempotency_key(None, "anon") == first
    assert await store.find_by_idempotency_key("key-a", "anon") is None


async def test_batches_without_idempotency_keys_never_clash(store: ResultsStore) -> None:
    for _ in range(3):
        await store.insert_batch(new_batch(idempotency_key=None))

    assert (await store.list_batches("key-a", 0, 10))[1] == 3


async def test_reused_batch_id_raises_store_error(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="taken"))

    with pytest.raises(StoreError, match="already taken"):
        await store.insert_batch(new_batch(batch_id="taken"))


async def test_list_batches_is_newest_first_with_batch_id_breaking_ties(
    store: ResultsStore,
) -> None:
    for batch_id, seconds in [("a", 0), ("c", 10), ("b", 10), ("d", 5)]:
        await store.insert_batch(new_batch(batch_id=batch_id, created_at=at(seconds)))

    page, total = await store.list_batches(None, 0, 10)

    assert [record.batch_id for record in page] == ["c", "b", "d", "a"]
    assert total == 4


async def test_list_batches_pages_without_overlap_and_reports_the_total(
    store: ResultsStore,
) -> None:
    for i in range(7):
        await store.insert_batch(new_batch(batch_id=f"b{i}", created_at=at(i)))

    pages = [await store.list_batches("key-a", offset, 3) for offset in (0, 3, 6, 9)]

    assert [[r.batch_id for r in page] for page, _ in pages] == [
        ["b6", "b5", "b4"],
        ["b3", "b2", "b1"],
        ["b0"],
        [],
    ]
    assert {total for _, total in pages} == {7}


async def test_list_batches_filters_by_owner_and_none_lists_everybodys(
    store: ResultsStore,
) -> None:
    await store.insert_batch(new_batch(batch_id="a1", owner_key_id="key-a"))
    await store.insert_batch(new_batch(batch_id="b1", owner_key_id="key-b"))
    await store.insert_batch(new_batch(batch_id="n1", owner_key_id=None))

    a_page, a_total = await store.list_batches("key-a", 0, 10)
    all_page, all_total = await store.list_batches(None, 0, 10)

    assert [r.batch_id for r in a_page] == ["a1"] and a_total == 1
    assert {r.batch_id for r in all_page} == {"a1", "b1", "n1"} and all_total == 3


async def test_count_unfinished_counts_queued_and_processing_batches_only(
    store: ResultsStore,
) -> None:
    await store.insert_batch(new_batch(batch_id="queued"))
    await store.insert_batch(new_batch(batch_id="running"))
    await store.insert_batch(new_batch(batch_id="done"))
    await store.insert_batch(new_batch(batch_id="other", owner_key_id="key-b"))
    await store.mark_processing("running", at(1))
    await store.finish_batch("done", "completed", 10, 0, 0, at(2))

    assert await store.count_unfinished("key-a") == 2
    assert await store.count_unfinished("key-b") == 1
    assert await store.count_unfinished(None) == 3


async def test_mark_processing_keeps_the_first_started_at(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="b"))

    await store.mark_processing("b", at(5))
    await store.mark_processing("b", at(9))

    record = await store.get_batch("b")
    assert record is not None
    assert record.status == BatchStatus.PROCESSING
    assert record.started_at == at(5)


async def test_mark_processing_leaves_a_finished_batch_alone(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="b"))
    await store.finish_batch("b", "cancelled", 0, 0, 0, at(3))

    await store.mark_processing("b", at(5))

    record = await store.get_batch("b")
    assert record is not None and record.status == BatchStatus.CANCELLED


async def test_mark_processing_of_an_unknown_batch_does_nothing(store: ResultsStore) -> None:
    await store.mark_processing("missing", at(1))

    assert await store.get_batch("missing") is None


async def test_finish_batch_succeeds_once_and_records_counts_and_duration(
    store: ResultsStore,
) -> None:
    await store.insert_batch(new_batch(batch_id="b"))
    await store.mark_processing("b", at(10))

    first = await store.finish_batch("b", "completed", 7, 2, 1, at(12.5))
    second = await store.finish_batch("b", "failed", 0, 0, 0, at(99), reason="late")

    record = await store.get_batch("b")
    assert (first, second) == (True, False)
    assert record is not None
    assert record.status == BatchStatus.COMPLETED
    assert (record.processed, record.filtered, record.invalid) == (7, 2, 1)
    assert record.completed_at == at(12.5)
    assert record.duration == pytest.approx(2.5)
    assert record.reason is None


async def test_finishing_a_batch_that_never_started_counts_from_its_creation(
    store: ResultsStore,
) -> None:
    await store.insert_batch(new_batch(batch_id="b", created_at=at(0)))

    assert await store.finish_batch("b", "failed", 0, 0, 0, at(4), reason="pipeline missing")

    record = await store.get_batch("b")
    assert record is not None
    assert record.started_at == at(0)
    assert record.duration == pytest.approx(4.0)
    assert record.reason == "pipeline missing"


async def test_concurrent_finishers_see_exactly_one_success(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="b"))

    outcomes = await asyncio.gather(
        *(store.finish_batch("b", "completed", i, 0, 0, at(1 + i)) for i in range(8))
    )

    assert sorted(outcomes) == [False] * 7 + [True]


async def test_finish_batch_rejects_an_unfinished_status(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="b"))

    with pytest.raises(ValueError, match="status must be one of"):
        await store.finish_batch("b", "processing", 0, 0, 0, at(1))


async def test_finish_batch_of_an_unknown_batch_returns_false(store: ResultsStore) -> None:
    assert await store.finish_batch("missing", "completed", 0, 0, 0, at(1)) is False
    assert await store.get_batch("missing") is None


async def test_ensure_batch_inserts_a_missing_batch_once_and_returns_the_stored_one(
    store: ResultsStore,
) -> None:
    batch = new_batch(batch_id="b", owner_key_id=None)

    records = await asyncio.gather(*(store.ensure_batch(batch) for _ in range(6)))
    await store.mark_processing("b", at(1))
    later = await store.ensure_batch(new_batch(batch_id="b", total=999))

    assert all(record == records[0] for record in records)
    assert records[0].status == BatchStatus.QUEUED
    assert later.status == BatchStatus.PROCESSING and later.total == batch.total
    assert (await store.list_batches(None, 0, 10))[1] == 1


async def test_delete_batch_removes_the_batch_and_its_chunks(store: ResultsStore) -> None:
    await store.insert_batch(new_batch(batch_id="b"))
    await store.put_chunk("b", 0, 0, [1, 2], [])

    await store.delete_batch("b")
    await store.delete_batch("b")  # already gone: no error

    assert await store.get_batch("b") is None
    assert await store.chunk_indexes("b") == set()


async def test_purge_deletes_old_finished_batches_with_their_chunks_and_keeps_the_rest(
    store: ResultsStore,
) -> None:
    await store.insert_batch(new_batch(batch_id="old-done", created_at=at(0)))
    await store.finish_batch("old-done", "completed", 1, 0, 0, at(10))
    await store.insert_batch(new_batch(batch_id="new-done", created_at=at(0)))
    await store.finish_batch("new-done", "completed", 1, 0, 0, at(200))
    await store.insert_batch(new_batch(batch_id="old-queued", created_at=at(0)))
    for batch_id in ("old-done", "new-done", "old-queued"):
        await store.put_chunk(batch_id, 0, 0, ["x"], [])

    purged = await store.purge_older_than(at(100))

    assert purged == 1
    assert await store.get_batch("old-done") is None
    assert await store.chunk_indexes("old-done") == set()
    assert await store.get_batch("new-done") is not None
    assert await store.get_batch("old-queued") is not None
    assert await store.chunk_indexes("old-queued") == {0}


async def test_purge_removes_old_chunks_whose_batch_is_gone(store: ResultsStore) -> None:
    # A worker wrote this chunk after the batch had been deleted.
    await store.put_chunk("orphan", 0, 0, ["x"], [])

    assert await store.purge_older_than(datetime.now(UTC) + timedelta(seconds=1)) == 0
    assert await store.chunk_indexes("orphan") == set()


async def test_datetimes_come_back_timezone_aware_in_utc(store: ResultsStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 6, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    await store.insert_batch(new_batch(batch_id="b", created_at=created))
    await store.mark_processing("b", created + timedelta(seconds=1))
    await store.finish_batch("b", "completed", 1, 0, 0, created + timedelta(seconds=3))

    record = await store.get_batch("b")

    assert record is not None
    for value in (record.created_at, record.started_at, record.completed_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0) and value.tzinfo == UTC
    assert record.created_at == created
    assert record.created_at.hour == 12 and record.created_at.microsecond == 123456


async def test_naive_datetimes_are_rejected(store: ResultsStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.insert_batch(new_batch(created_at=BASE_TIME.replace(tzinfo=None)))


async def test_abandoning_a_batch_fails_it_and_frees_its_idempotency_key(
    store: ResultsStore,
) -> None:
    batch = await store.insert_batch(new_batch(owner_key_id="k", idempotency_key="idem-1"))

    await store.abandon_batch(batch.batch_id, "Kafka unavailable")

    stored = await store.get_batch(batch.batch_id)
    assert stored is not None
    assert (stored.status, stored.reason, stored.idempotency_key) == (
        "failed",
        "Kafka unavailable",
        None,
    )
    assert stored.completed_at is not None
    assert await store.find_by_idempotency_key("k", "idem-1") is None
    retry = await store.insert_batch(new_batch(owner_key_id="k", idempotency_key="idem-1"))
    assert retry.batch_id != batch.batch_id


async def test_insert_with_max_unfinished_refuses_the_batch_past_the_limit(
    store: ResultsStore,
) -> None:
    for _ in range(2):
        await store.insert_batch(new_batch(owner_key_id="k"), max_unfinished=2)

    with pytest.raises(TooManyUnfinished):
        await store.insert_batch(new_batch(owner_key_id="k"), max_unfinished=2)
    assert await store.count_unfinished("k") == 2
    # Another owner has room of its own.
    await store.insert_batch(new_batch(owner_key_id="other"), max_unfinished=2)


async def test_concurrent_inserts_with_max_unfinished_never_exceed_it(
    store_target: StoreTarget,
) -> None:
    stores = [await store_target.connect() for _ in range(4)]
    try:

        async def attempt(store: ResultsStore) -> bool:
            try:
                await store.insert_batch(new_batch(owner_key_id="racer"), max_unfinished=5)
            except TooManyUnfinished:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt(stores[i % 4]) for i in range(12)))
        assert sum(outcomes) == 5
        assert await stores[0].count_unfinished("racer") == 5
    finally:
        for store in stores:
            await store.close()


async def test_stalled_batches_are_unfinished_ones_without_progress_since_the_cutoff(
    store: ResultsStore,
) -> None:
    idle = await store.insert_batch(new_batch(created_at=at(0)))
    busy = await store.insert_batch(new_batch(created_at=at(0)))
    await store.put_chunk(busy.batch_id, 0, 0, ["x"], [])  # stored now: recent progress
    started = await store.insert_batch(new_batch(created_at=at(0)))
    await store.mark_processing(started.batch_id, at(100))
    done = await store.insert_batch(new_batch(created_at=at(0)))
    await store.finish_batch(done.batch_id, "completed", 1, 0, 0, at(5))
    await store.insert_batch(new_batch(created_at=at(90)))  # too young

    stalled = await store.stalled_batches(at(50))

    assert [batch.batch_id for batch in stalled] == [idle.batch_id]
