"""The admission rules: which chunks agree with their batch, and what a producer's chunk implies."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import jsonio
from schemas.events import MAX_BATCH_ITEMS, MAX_CHUNK_ITEMS, MAX_CHUNKS, ChunkEvent, decode
from streams.admission import (
    BatchShape,
    DeadLetterCode,
    check_chunk,
    implied_shape,
    producer_batch,
    shape_of,
    signature_required,
)
from streams.topics import TopicNames
from tests.unit.streams.fakes import new_batch, record_of

# A batch of 10 items cut at 4: chunks of 4, 4 and 2 items at rows 0, 4 and 8.
SHAPE = BatchShape(total=10, chunk_count=3, batch_size=4)


def chunk(index: int = 0, **overrides: Any) -> ChunkEvent:
    """Chunk ``index`` of SHAPE, as it should be, with ``overrides`` applied."""
    first_row = index * SHAPE.batch_size
    values: dict[str, Any] = {
        "batch_id": "b1",
        "chunk_index": index,
        "chunk_count": SHAPE.chunk_count,
        "first_row": first_row,
        "total": SHAPE.total,
        "items": [{"n": n} for n in range(first_row, min(first_row + 4, SHAPE.total))],
    }
    values.update(overrides)
    return ChunkEvent(**values)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_chunk_of_a_well_cut_batch_is_admitted(index: int) -> None:
    assert check_chunk(chunk(index), SHAPE) is None


@pytest.mark.parametrize("index", [3, 4, MAX_CHUNKS - 1])
def test_chunk_index_at_or_past_chunk_count_is_out_of_range(index: int) -> None:
    assert check_chunk(chunk(index, first_row=0), SHAPE) == DeadLetterCode.INDEX_OUT_OF_RANGE


@pytest.mark.parametrize(("index", "first_row"), [(0, 1), (1, 0), (1, 5), (2, 4), (2, 9)])
def test_first_row_other_than_index_times_batch_size_is_misplaced(
    index: int, first_row: int
) -> None:
    assert check_chunk(chunk(index, first_row=first_row), SHAPE) == DeadLetterCode.MISPLACED_ROWS


@pytest.mark.parametrize(
    ("index", "count"),
    [(0, 5), (0, 3), (1, 0), (2, 3), (2, 1), (2, 4)],
    ids=[
        "first-too-many",
        "first-too-few",
        "middle-empty",
        "last-too-many",
        "last-too-few",
        "last-full-size",
    ],
)
def test_chunk_without_its_share_of_items_is_refused(index: int, count: int) -> None:
    refused = chunk(index, items=[{"n": n} for n in range(count)])
    assert check_chunk(refused, SHAPE) == DeadLetterCode.WRONG_ITEM_COUNT


def test_last_chunk_may_be_shorter_than_batch_size() -> None:
    last = chunk(2)
    assert len(last.items) == 2
    assert check_chunk(last, SHAPE) is None


@pytest.mark.parametrize(
    "overrides", [{"total": 11}, {"total": 9}, {"chunk_count": 4}, {"chunk_count": 2}]
)
def test_total_or_chunk_count_other_than_the_batchs_is_a_mismatch(
    overrides: dict[str, int],
) -> None:
    assert check_chunk(chunk(1, **overrides), SHAPE) == DeadLetterCode.BATCH_MISMATCH


@pytest.mark.parametrize("rows", [[3], [8], [4, 8], [100]])
def test_duplicate_rows_outside_the_chunk_make_it_invalid(rows: list[int]) -> None:
    assert check_chunk(chunk(1, duplicate_rows=rows), SHAPE) == DeadLetterCode.INVALID_CHUNK


@pytest.mark.parametrize("rows", [[], [4], [4, 7], [5, 6]])
def test_duplicate_rows_inside_the_chunk_are_fine(rows: list[int]) -> None:
    assert check_chunk(chunk(1, duplicate_rows=rows), SHAPE) is None


def test_shape_of_a_registered_batch_is_its_total_count_and_size() -> None:
    batch = record_of(new_batch(total=25, chunk_count=3, batch_size=10))
    assert shape_of(batch) == BatchShape(total=25, chunk_count=3, batch_size=10)


# implied_shape: what a producer's first chunk says about its batch


@pytest.mark.parametrize("index", [0, 1, 2], ids=["first", "middle", "last"])
def test_any_chunk_of_a_producer_batch_implies_the_batch_shape(index: int) -> None:
    assert implied_shape(chunk(index)) == SHAPE


def test_last_chunk_implies_batch_size_from_its_first_row() -> None:
    last = ChunkEvent(
        batch_id="b1", chunk_index=4, chunk_count=5, first_row=28, total=30, items=[{}, {}]
    )
    assert implied_shape(last) == BatchShape(total=30, chunk_count=5, batch_size=7)


def test_single_chunk_implies_a_batch_size_of_its_total() -> None:
    only = ChunkEvent(
        batch_id="b1", chunk_index=0, chunk_count=1, first_row=0, total=3, items=[{}, {}, {}]
    )
    assert implied_shape(only) == BatchShape(total=3, chunk_count=1, batch_size=3)


def test_empty_batch_is_one_empty_chunk() -> None:
    empty = ChunkEvent(batch_id="b1", chunk_index=0, chunk_count=1, first_row=0, total=0, items=[])
    assert implied_shape(empty) == BatchShape(total=0, chunk_count=1, batch_size=1)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"chunk_index": 3, "first_row": 12}, DeadLetterCode.INDEX_OUT_OF_RANGE),
        # first of 3 with 5 items: 10 items need 2 chunks of 5, not 3
        ({"chunk_index": 0, "items": [{}] * 5}, DeadLetterCode.BATCH_MISMATCH),
        # middle chunk with no items: no batch size at all
        ({"chunk_index": 1, "first_row": 4, "items": []}, DeadLetterCode.BATCH_MISMATCH),
        # last at row 9: 9 is no multiple of its index 2
        ({"chunk_index": 2, "first_row": 9, "items": [{}]}, DeadLetterCode.MISPLACED_ROWS),
        # last at row 2: a batch size of 1 cuts 10 items into 10 chunks, not 3
        ({"chunk_index": 2, "first_row": 2, "items": [{}]}, DeadLetterCode.BATCH_MISMATCH),
        # middle chunk whose first row disagrees with its item count
        ({"chunk_index": 1, "first_row": 3}, DeadLetterCode.MISPLACED_ROWS),
        # last chunk holding fewer items than the rest of the batch
        ({"chunk_index": 2, "first_row": 8, "items": [{}]}, DeadLetterCode.WRONG_ITEM_COUNT),
        # a single chunk holding less than the batch's total
        ({"chunk_count": 1, "total": 3, "items": [{}, {}]}, DeadLetterCode.WRONG_ITEM_COUNT),
        # an empty batch holding an item
        ({"chunk_count": 1, "total": 0, "items": [{}]}, DeadLetterCode.WRONG_ITEM_COUNT),
        # an empty batch cannot be cut in two
        ({"chunk_count": 2, "total": 0, "items": []}, DeadLetterCode.BATCH_MISMATCH),
        ({"chunk_index": 1, "first_row": 4, "duplicate_rows": [0]}, DeadLetterCode.INVALID_CHUNK),
    ],
)
def test_inconsistent_producer_chunk_implies_no_shape(
    overrides: dict[str, Any], code: DeadLetterCode
) -> None:
    values: dict[str, Any] = {
        "batch_id": "b1",
        "chunk_index": 0,
        "chunk_count": 3,
        "first_row": 0,
        "total": 10,
        "items": [{}] * 4,
    }
    values.update(overrides)
    assert implied_shape(ChunkEvent(**values)) == code


def test_producer_batch_is_keyless_and_takes_the_chunks_pipeline() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    first = chunk(1, pipeline="default@1", on_invalid="skip")
    batch = producer_batch(first, SHAPE, now)
    assert (batch.batch_id, batch.owner_key_id, batch.pipeline_ref, batch.on_invalid) == (
        "b1",
        None,
        "default@1",
        "skip",
    )
    assert (batch.total, batch.chunk_count, batch.batch_size) == (10, 3, 4)
    assert batch.parallel is True and batch.created_at == now


def test_only_api_batches_need_the_apis_signature() -> None:
    assert signature_required(record_of(new_batch(owner_key_id="key-a"))) is True
    assert signature_required(record_of(new_batch(owner_key_id=None))) is False
    # A producer's batch owned by a key needs that key's signature instead (streams.owners).
    owned = new_batch(batch_id="p0123456789abcdef:orders", owner_key_id="key-a")
    assert signature_required(record_of(owned)) is False


# The schema's bounds: refused before any rule runs


def _raw(**overrides: Any) -> bytes:
    values: dict[str, Any] = {
        "batch_id": "b1",
        "chunk_index": 0,
        "chunk_count": 1,
        "first_row": 0,
        "total": 0,
        "items": [],
    }
    values.update(overrides)
    return jsonio.dumps(values)


def test_bounds_admit_the_largest_allowed_values() -> None:
    event = decode(
        ChunkEvent,
        _raw(
            chunk_index=MAX_CHUNKS - 1,
            chunk_count=MAX_CHUNKS,
            first_row=MAX_BATCH_ITEMS - 1,
            total=MAX_BATCH_ITEMS,
        ),
    )
    assert (event.chunk_index, event.chunk_count) == (MAX_CHUNKS - 1, MAX_CHUNKS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chunk_index", 2**63),
        ("chunk_index", MAX_CHUNKS),
        ("chunk_index", -1),
        ("chunk_count", MAX_CHUNKS + 1),
        ("chunk_count", 0),
        ("first_row", MAX_BATCH_ITEMS),
        ("total", MAX_BATCH_ITEMS + 1),
        ("items", [{}] * (MAX_CHUNK_ITEMS + 1)),
        ("duplicate_rows", [MAX_BATCH_ITEMS]),
        ("batch_id", ""),
        ("batch_id", "a/b"),
    ],
)
def test_values_outside_the_schemas_bounds_fail_validation(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(ChunkEvent, _raw(**{field: value}))
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_chunk_inputs_are_the_requests_topic_and_each_producer_s_ingest_topic() -> None:
    topics = TopicNames("bl.x")
    pattern = re.compile(topics.chunk_inputs)
    ingest = topics.ingest("p0123456789abcdef")

    assert ingest == "bl.x.ingest.p0123456789abcdef"
    assert [bool(pattern.match(name)) for name in (topics.requests, ingest)] == [True, True]
    others = [topics.records, "bl.x.ingest.nope", "blyx.requests", "bl.x.requests.more"]
    assert not any(pattern.match(name) for name in others)
    assert topics.ingest_namespace(ingest) == "p0123456789abcdef"
    assert topics.ingest_namespace(topics.requests) is None
    assert topics.ingest_namespace("bl.x.ingest.p0123") is None


def test_record_inputs_are_the_shared_records_topic_and_each_producer_s_own() -> None:
    topics = TopicNames("bl.x")
    pattern = re.compile(topics.record_inputs)
    own = topics.producer_records("p0123456789abcdef")

    assert own == "bl.x.records.p0123456789abcdef"
    assert [bool(pattern.match(name)) for name in (topics.records, own)] == [True, True]
    others = [
        topics.record_results,
        topics.requests,
        topics.ingest("p0123456789abcdef"),
        "bl.x.records.nope",
        "bl.x.records.p0123456789abcdef.more",
        "blyx.records",
    ]
    assert not any(pattern.match(name) for name in others)
    assert topics.records_namespace(own) == "p0123456789abcdef"
    assert topics.records_namespace(topics.records) is None
    assert topics.records_namespace(topics.ingest("p0123456789abcdef")) is None
