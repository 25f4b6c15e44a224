"""Result chunks: idempotent writes, ordered windows over items, exact decimals, errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from store import BatchEnding, BatchNotFound, ResultsStore, chunks, encode_chunk, results_store
from store.results_store import CHUNKS_PER_READ
from tests.integration.store.builders import StoreTarget, at, new_batch

REPO_ROOT = Path(__file__).resolve().parents[3]
CHUNK_SIZES = [3, 0, 4, 1, 5]  # 13 items; chunk 1 is empty (all its rows were filtered)
# Windows that start and end inside chunks, on their edges, past the end, and empty.
WINDOWS: list[tuple[int, int | None]] = [(0, None), (0, 3), (2, 2), (3, 4), (2, 9), (7, 1)]
WINDOWS += [(8, 100), (12, 5), (13, 5), (40, 2), (5, 0)]


async def put_sized_chunks(store: ResultsStore, batch_id: str, order: Sequence[int]) -> list[str]:
    """Put chunks of CHUNK_SIZES in the given order; returns every item in item order."""
    items = [[f"c{index}-{i}" for i in range(size)] for index, size in enumerate(CHUNK_SIZES)]
    starts = [sum(CHUNK_SIZES[:index]) for index in range(len(CHUNK_SIZES))]
    for index in order:
        await store.put_chunk(batch_id, index, starts[index], items[index], [])
    return [item for chunk in items for item in chunk]


async def collect(store: ResultsStore, batch_id: str, **window: Any) -> list[Any]:
    return [item async for item in store.iter_results(batch_id, **window)]


async def test_putting_the_same_chunk_twice_stores_it_once(store: ResultsStore) -> None:
    first = await store.put_chunk("b", 0, 0, ["a", "b"], [{"row": 2, "field": "x", "reason": "r"}])
    second = await store.put_chunk("b", 0, 0, ["a", "b"], [{"row": 2, "field": "x", "reason": "r"}])

    assert (first, second) == (True, False)
    assert await store.count_results("b") == 2
    assert (await store.list_errors("b", 0, 10))[1] == 1
    assert await collect(store, "b") == ["a", "b"]


async def test_a_repeated_chunk_with_other_content_keeps_the_first_copy(
    store: ResultsStore,
) -> None:
    await store.put_chunk("b", 0, 0, ["first"], [])

    assert await store.put_chunk("b", 0, 0, ["second", "extra"], []) is False
    assert await collect(store, "b") == ["first"]


async def test_concurrent_puts_of_the_same_chunk_store_it_exactly_once(
    store: ResultsStore,
) -> None:
    outcomes = await asyncio.gather(
        *(store.put_chunk("b", 3, 30, list(range(10)), []) for _ in range(25))
    )

    assert outcomes.count(True) == 1
    assert await store.chunk_indexes("b") == {3}
    assert await store.count_results("b") == 10


async def test_puts_from_two_processes_store_every_chunk_once(store_target: StoreTarget) -> None:
    # Opening the store here creates the schema, so the writers race only on chunks.
    opened = await store_target.connect()
    try:
        args = [store_target.url, store_target.pg_schema or "", "b", "40"]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.integration.store.chunk_writer",
                *args,
                cwd=REPO_ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outputs = [await proc.communicate() for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0]
        stored_by = [int(stdout) for stdout, _ in outputs]

        assert sum(stored_by) == 40
        assert await opened.chunk_indexes("b") == set(range(40))
        assert await opened.count_results("b") == 40 * 5
    finally:
        await opened.close()


async def test_results_come_back_in_chunk_order_when_chunks_arrive_out_of_order(
    store: ResultsStore,
) -> None:
    expected = await put_sized_chunks(store, "b", order=[4, 2, 0, 3, 1])

    assert await collect(store, "b") == expected
    assert await store.chunk_indexes("b") == {0, 1, 2, 3, 4}
    assert await store.count_results("b") == 13


@pytest.mark.parametrize(("offset", "limit"), WINDOWS)
async def test_result_windows_match_slicing_across_chunk_boundaries(
    store: ResultsStore, offset: int, limit: int | None
) -> None:
    expected = await put_sized_chunks(store, "b", order=[3, 0, 4, 1, 2])

    window = await collect(store, "b", offset=offset, limit=limit)

    end = None if limit is None else offset + limit
    assert window == expected[offset:end]


async def test_results_are_loaded_a_few_chunks_at_a_time_and_only_inside_the_window(
    store: ResultsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(40):
        await store.put_chunk("b", index, index * 10, [index * 10 + i for i in range(10)], [])
    requested: list[list[int]] = []
    original = chunks.payloads

    def spy(conn: Any, batch_id: str, chunk_indexes: Sequence[int], column: str) -> dict[int, str]:
        requested.append(list(chunk_indexes))
        return original(conn, batch_id, chunk_indexes, column)

    monkeypatch.setattr(chunks, "payloads", spy)

    window = await collect(store, "b", offset=95, limit=150)

    assert window == list(range(95, 245))
    assert max(len(indexes) for indexes in requested) <= CHUNKS_PER_READ
    assert [i for indexes in requested for i in indexes] == list(range(9, 25))


async def test_results_of_an_unknown_batch_are_empty(store: ResultsStore) -> None:
    assert await collect(store, "missing") == []
    assert await store.count_results("missing") == 0
    assert await store.chunk_indexes("missing") == set()


async def test_decimals_keep_their_scale_through_the_store(store: ResultsStore) -> None:
    results = [
        {"amount": Decimal("100.50"), "fee": Decimal("0.000"), "n": 3},
        {"amount": Decimal("-1E+3"), "nested": [Decimal("2.10")], "text": "x"},
    ]
    await store.put_chunk("b", 0, 0, results, [])

    stored = await collect(store, "b")

    assert stored == results
    assert str(stored[0]["amount"]) == "100.50"
    assert str(stored[0]["fee"]) == "0.000"
    assert str(stored[1]["nested"][0]) == "2.10"
    assert isinstance(stored[0]["n"], int)


async def test_errors_are_listed_in_row_order_with_their_total(store: ResultsStore) -> None:
    def error(row: int) -> dict[str, Any]:
        return {"row": row, "field": "amount", "reason": "Invalid number format"}

    await store.put_chunk("b", 1, 10, [], [error(14), error(11)])
    await store.put_chunk("b", 0, 0, ["ok"], [error(3)])
    await store.put_chunk("b", 2, 20, ["ok"], [])
    await store.put_chunk("b", 3, 30, [], [error(30), error(31), error(39)])

    everything, total = await store.list_errors("b", 0, 100)
    page, page_total = await store.list_errors("b", 2, 2)

    assert [e["row"] for e in everything] == [3, 11, 14, 30, 31, 39]
    assert total == page_total == 6
    assert [e["row"] for e in page] == [14, 30]
    assert everything[0] == error(3)
    assert await store.list_errors("missing", 0, 10) == ([], 0)


async def test_reading_results_of_a_batch_deleted_meanwhile_raises_batch_not_found(
    store: ResultsStore,
) -> None:
    for index in range(CHUNKS_PER_READ + 2):
        await store.put_chunk("b", index, index, [index], [])
    results = store.iter_results("b")

    assert await anext(results) == 0
    await store.delete_batch("b")

    with pytest.raises(BatchNotFound):
        async for _ in results:
            pass


async def test_chunk_summaries_give_first_row_and_counts_of_each_stored_chunk(
    store: ResultsStore,
) -> None:
    await store.put_chunk("b", 1, 3, ["x"], [{"row": 4, "field": "f", "reason": "r"}])
    await store.put_chunk("b", 0, 0, ["a", "b"], [])

    assert sorted(await store.chunk_summaries("b")) == [(0, 2, 0), (3, 1, 1)]
    assert await store.chunk_summaries("other") == []


async def test_chunk_locations_are_recorded_once_and_found_by_index(store: ResultsStore) -> None:
    await store.record_chunk_locations("b", [(0, 10), (3, 4), (1, 99)])
    await store.record_chunk_locations("b", [(7, 7)])  # a repeat changes nothing

    assert await store.chunk_locations("b", {0, 2, 5}) == {0: (0, 10), 2: (1, 99)}
    await store.delete_batch("b")
    assert await store.chunk_locations("b", {0, 1, 2}) == {}


async def test_a_cancel_keeps_only_the_chunks_its_counts_include(store: ResultsStore) -> None:
    batch = await store.insert_batch(new_batch(total=9, chunk_count=3, batch_size=3))
    for index in range(3):
        await store.put_chunk(batch.batch_id, index, 3 * index, [f"r{index}"] * 3, [])

    finished_now, ended = await store.end_batch(
        batch.batch_id, "cancelled", (6, 0, 0), at(10), counted_chunks=[0, 2]
    )

    assert finished_now and ended is not None and ended.status == "cancelled"
    assert await store.chunk_indexes(batch.batch_id) == {0, 2}
    assert await collect(store, batch.batch_id) == ["r0"] * 3 + ["r2"] * 3
    # Ending an ended batch deletes nothing more.
    again, _ = await store.end_batch(
        batch.batch_id, "cancelled", (0, 0, 0), at(11), counted_chunks=[]
    )
    assert not again
    assert await store.chunk_indexes(batch.batch_id) == {0, 2}


async def test_an_ending_without_counted_chunks_keeps_every_chunk(store: ResultsStore) -> None:
    batch = await store.insert_batch(new_batch(total=6, chunk_count=2, batch_size=3))
    for index in range(2):
        await store.put_chunk(batch.batch_id, index, 3 * index, ["x"] * 3, [])
    await store.end_batch(batch.batch_id, "completed", (6, 0, 0), at(10))
    assert await store.chunk_indexes(batch.batch_id) == {0, 1}


async def test_a_chunk_group_ends_the_batches_it_is_given_endings_for(store: ResultsStore) -> None:
    one = await store.insert_batch(new_batch(total=2, chunk_count=1, batch_size=2))
    cancelled = await store.insert_batch(new_batch(total=2, chunk_count=1, batch_size=2))
    await store.end_batch(cancelled.batch_id, "cancelled", (0, 0, 0), at(1))
    group = [
        encode_chunk(one.batch_id, 0, 0, ["a", "b"], []),
        encode_chunk(cancelled.batch_id, 0, 0, ["c", "d"], []),
    ]
    endings = {
        one.batch_id: BatchEnding("completed", (2, 0, 0)),
        cancelled.batch_id: BatchEnding("completed", (2, 0, 0)),
    }

    put = await store.put_chunk_group(group, {one.batch_id}, at(5), endings)

    assert put.finished == {cancelled.batch_id}
    assert set(put.ended) == {one.batch_id}
    ended = put.ended[one.batch_id]
    assert (ended.status, ended.processed, ended.started_at) == ("completed", 2, at(5))
    assert ended.completed_at is not None and ended.duration is not None
    assert await store.get_batch(one.batch_id) == ended
    assert await collect(store, one.batch_id) == ["a", "b"]
    # The cancelled batch keeps its ending, and gets no chunk.
    assert (await store.get_batch(cancelled.batch_id)).status == "cancelled"  # type: ignore[union-attr]
    assert await store.chunk_indexes(cancelled.batch_id) == set()
    # The same group again ends nothing more.
    again = await store.put_chunk_group(group, set(), at(6), endings)
    assert again.ended == {} and again.finished == {one.batch_id, cancelled.batch_id}


async def test_a_small_completed_batch_comes_with_its_results_in_one_read(
    store: ResultsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = await store.insert_batch(new_batch(total=13, chunk_count=5, batch_size=3))
    expected = await put_sized_chunks(store, batch.batch_id, [4, 2, 0, 3, 1])

    running, none_yet = await store.get_batch_and_results(batch.batch_id)
    assert running is not None and running.status == "queued" and none_yet is None

    await store.end_batch(batch.batch_id, "completed", (13, 0, 0), at(10))
    ended, results = await store.get_batch_and_results(batch.batch_id)
    assert ended is not None and ended.status == "completed"
    assert results == expected

    monkeypatch.setattr(results_store, "SMALL_READ_ITEMS", 12)
    _, too_many = await store.get_batch_and_results(batch.batch_id)
    assert too_many is None  # streamed with iter_results instead
    assert await store.get_batch_and_results("b_unknown") == (None, None)


async def test_a_batch_registered_after_its_group_was_read_starts_when_registered(
    store: ResultsStore,
) -> None:
    # A producer's batch is registered while its first group is prepared, after reading began.
    batch = await store.insert_batch(
        new_batch(total=1, chunk_count=1, batch_size=1, created_at=at(10))
    )
    group = [encode_chunk(batch.batch_id, 0, 0, ["a"], [])]
    endings = {batch.batch_id: BatchEnding("completed", (1, 0, 0))}

    put = await store.put_chunk_group(group, {batch.batch_id}, at(5), endings)

    ended = put.ended[batch.batch_id]
    assert ended.started_at == at(10) == ended.created_at
    assert ended.duration is not None and ended.duration >= 0
