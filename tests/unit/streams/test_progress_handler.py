"""The progress handler: folding progress and control messages, and ending batches."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.events import (
    BatchStatusEvent,
    CancelCommand,
    ChunkCounts,
    ChunkFailedEvent,
    ChunksDoneEvent,
    DeadLetterEvent,
    decode,
)
from streams.dead_letters import SourceMessage
from streams.finishing import REJECTED_REASON, BatchFinisher, final_status
from streams.progress_handler import ProgressHandler, count_chunks, decode_progress, new_state
from telemetry.metrics import Metrics
from tests.unit.streams.builders import TOPICS
from tests.unit.streams.fakes import FakeOutputs, FakeStore, new_batch, record_of

AT = datetime(2024, 1, 1, tzinfo=UTC)
KEY = b"b1"


class CountingTable(dict[Any, Any]):
    """A progress table that counts its writes."""

    writes = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def done(*chunks: tuple[int, int, int, int], batch_id: str = "b1") -> bytes:
    """A chunks_done message; each chunk is (index, processed, filtered, invalid)."""
    return ChunksDoneEvent(
        batch_id=batch_id,
        chunk_count=3,
        total=10,
        chunks=[
            ChunkCounts(chunk_index=i, processed=p, filtered=f, invalid=n) for i, p, f, n in chunks
        ],
        at=AT,
    ).to_bytes()


def cancel(batch_id: str = "b1") -> bytes:
    return CancelCommand(batch_id=batch_id, requested_at=AT).to_bytes()


def failed(reason: str, batch_id: str = "b1") -> bytes:
    return ChunkFailedEvent(batch_id=batch_id, chunk_index=1, reason=reason, at=AT).to_bytes()


def on_topic(payloads: list[bytes]) -> list[SourceMessage]:
    """The payloads as consecutive messages of the progress topic's partition 0."""
    return [
        SourceMessage(TOPICS.progress, 0, offset, None, payload)
        for offset, payload in enumerate(payloads)
    ]


def dead_letters(outputs: FakeOutputs) -> list[DeadLetterEvent]:
    return [decode(DeadLetterEvent, m.value) for m in outputs.on(TOPICS.dead_letters)]


def statuses(outputs: FakeOutputs) -> list[BatchStatusEvent]:
    return [decode(BatchStatusEvent, m.value) for m in outputs.on(TOPICS.status)]


def add_batch(store: FakeStore, on_invalid: str = "reject", status: str = "processing") -> None:
    """b1: 10 items in 3 chunks of 4, 4 and 2."""
    store.add(
        new_batch(batch_id="b1", total=10, chunk_count=3, batch_size=4, on_invalid=on_invalid),
        status=status,
    )


@pytest.fixture
def table() -> CountingTable:
    return CountingTable()


@pytest.fixture
def progress(
    store: FakeStore,
    table: CountingTable,
    finisher: BatchFinisher,
    outputs: FakeOutputs,
    metrics: Metrics,
) -> ProgressHandler:
    return ProgressHandler(
        store=store,
        table=table,
        finisher=finisher,
        outputs=outputs,
        dead_letter_topic=TOPICS.dead_letters,
        metrics=metrics,
    )


# counting


async def test_two_messages_of_a_batch_in_one_group_make_one_table_write_and_one_projection(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, metrics: Metrics
) -> None:
    add_batch(store)

    decisions = await progress.handle_group(on_topic([done((0, 4, 0, 0)), done((1, 3, 1, 0))]))

    assert decisions == {"b1": "counted"}
    assert table.writes == 1
    assert (table[KEY]["done"], table[KEY]["processed"], table[KEY]["filtered"]) == (2, 7, 1)
    assert table[KEY]["marks"] == "3"
    assert store.progress_calls == [[("b1", 7, 1, 0)]]
    assert (store.batches["b1"].processed, store.batches["b1"].filtered) == (7, 1)
    assert metrics.registry is not None
    assert (
        metrics.registry.get_sample_value("batch_store_transactions_total", {"kind": "progress"})
        == 1
    )


async def test_group_of_several_batches_records_their_progress_in_one_call(
    progress: ProgressHandler, store: FakeStore
) -> None:
    add_batch(store)
    store.add(new_batch(batch_id="b2", total=10, chunk_count=3, batch_size=4))

    await progress.handle_group(on_topic([done((0, 4, 0, 0)), done((0, 2, 2, 1), batch_id="b2")]))

    assert store.progress_calls == [[("b1", 4, 0, 0), ("b2", 2, 2, 1)]]


async def test_chunk_reported_twice_in_one_group_is_counted_once(
    progress: ProgressHandler, store: FakeStore, table: CountingTable
) -> None:
    add_batch(store)

    await progress.handle_group(on_topic([done((0, 4, 0, 0)), done((0, 4, 0, 0), (1, 4, 0, 0))]))

    assert (table[KEY]["done"], table[KEY]["processed"]) == (2, 8)
    assert store.progress_calls == [[("b1", 8, 0, 0)]]


async def test_chunk_reported_twice_across_groups_is_counted_once(
    progress: ProgressHandler, store: FakeStore, table: CountingTable
) -> None:
    add_batch(store)

    await progress.handle_group(on_topic([done((1, 3, 1, 1))]))
    decisions = await progress.handle_group(on_topic([done((1, 3, 1, 1), (0, 4, 0, 0))]))

    assert decisions == {"b1": "counted"}
    assert (table[KEY]["done"], table[KEY]["processed"], table[KEY]["invalid"]) == (2, 7, 1)
    assert store.progress_calls == [[("b1", 3, 1, 1)], [("b1", 7, 1, 1)]]
    assert store.finish_calls == []


async def test_chunk_index_past_the_batchs_chunk_count_is_ignored(
    progress: ProgressHandler, store: FakeStore, table: CountingTable
) -> None:
    add_batch(store)

    await progress.handle_group(on_topic([done((3, 4, 0, 0), (7, 4, 0, 0), (0, 1, 0, 0))]))

    assert (table[KEY]["done"], table[KEY]["processed"], table[KEY]["marks"]) == (1, 1, "1")
    assert store.finish_calls == []


# ending batches


async def test_batch_with_every_chunk_counted_is_completed_and_announced(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)
    await progress.handle_group(on_topic([done((0, 4, 0, 0), (1, 3, 1, 0))]))
    assert KEY in table

    decisions = await progress.handle_group(on_topic([done((2, 2, 0, 0))]))

    assert decisions == {"b1": "completed"}
    assert store.finish_calls == [("b1", "completed", 9, 1, 0, None)]
    stored = store.batches["b1"]
    assert (stored.status, stored.processed, stored.filtered, stored.invalid) == (
        "completed",
        9,
        1,
        0,
    )
    processing, status = statuses(outputs)  # the first group's counts, then the end
    assert (processing.status, processing.processed, processing.chunks_done) == (
        "processing",
        7,
        2,
    )
    assert (status.batch_id, status.status, status.total) == ("b1", "completed", 10)
    assert (status.processed, status.filtered, status.invalid) == (9, 1, 0)
    assert (status.chunks_done, status.chunk_count, status.reason) == (3, 3, None)
    assert [m.key for m in outputs.on(TOPICS.status)] == [KEY, KEY]
    assert KEY not in table
    assert len(store.progress_calls) == 1  # the first group's live counts only


async def test_batch_completed_in_one_group_is_never_written_to_the_table(
    progress: ProgressHandler, store: FakeStore, table: CountingTable
) -> None:
    add_batch(store)

    decisions = await progress.handle_group(
        on_topic([done((0, 4, 0, 0), (1, 4, 0, 0), (2, 2, 0, 0))])
    )

    assert decisions == {"b1": "completed"}
    assert table.writes == 0 and dict(table) == {}
    assert store.progress_calls == []


async def test_reject_batch_with_invalid_records_fails_with_the_rejected_reason(
    progress: ProgressHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    add_batch(store, on_invalid="reject")

    decisions = await progress.handle_group(
        on_topic([done((0, 3, 1, 1), (1, 4, 0, 0), (2, 2, 0, 0))])
    )

    assert decisions == {"b1": "failed"}
    assert store.finish_calls == [("b1", "failed", 9, 1, 1, REJECTED_REASON)]
    assert store.batches["b1"].reason == REJECTED_REASON
    [status] = statuses(outputs)
    assert (status.status, status.reason, status.invalid) == ("failed", REJECTED_REASON, 1)


async def test_skip_batch_with_invalid_records_completes(
    progress: ProgressHandler, store: FakeStore
) -> None:
    add_batch(store, on_invalid="skip")

    decisions = await progress.handle_group(
        on_topic([done((0, 3, 1, 1), (1, 4, 0, 0), (2, 1, 1, 1))])
    )

    assert decisions == {"b1": "completed"}
    assert store.finish_calls == [("b1", "completed", 8, 2, 2, None)]
    assert store.counted_at_end == {"b1": None}  # a completed batch keeps every chunk


async def test_cancel_ends_the_batch_and_later_progress_is_ignored(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)
    await progress.handle_group(on_topic([done((0, 4, 0, 0))]))

    assert await progress.handle_group(on_topic([cancel()])) == {"b1": "cancelled"}
    assert store.finish_calls == [("b1", "cancelled", 4, 0, 0, None)]
    # Only chunk 0 was counted: any other stored chunk goes, so results agree with the counts.
    assert store.counted_at_end == {"b1": {0}}
    assert store.batches["b1"].status == "cancelled"
    assert KEY not in table
    assert [s.status for s in statuses(outputs)] == ["processing", "cancelled"]

    assert await progress.handle_group(on_topic([done((1, 4, 0, 0), (2, 2, 0, 0))])) == {
        "b1": "ignored"
    }
    assert len(store.finish_calls) == 1
    assert KEY not in table
    assert store.batches["b1"].processed == 4
    assert len(store.progress_calls) == 1


async def test_cancel_of_a_finished_batch_is_refused_and_its_status_repeated(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)
    await progress.handle_group(on_topic([done((0, 4, 0, 0), (1, 4, 0, 0), (2, 2, 0, 0))]))
    outputs.sent.clear()

    assert await progress.handle_group(on_topic([cancel()])) == {"b1": "refused"}

    assert [call[1] for call in store.finish_calls] == ["completed"]
    assert store.batches["b1"].status == "completed"
    [status] = statuses(outputs)
    assert (status.batch_id, status.status, status.processed, status.chunks_done) == (
        "b1",
        "completed",
        10,
        3,
    )
    assert dict(table) == {}


async def test_cancel_after_the_last_chunk_in_the_same_group_does_not_cancel_a_done_batch(
    progress: ProgressHandler, store: FakeStore
) -> None:
    # One message at a time, the last chunk completes the batch and the cancel is refused;
    # folding both into one group must decide the same.
    add_batch(store)

    decisions = await progress.handle_group(
        on_topic([done((0, 4, 0, 0), (1, 4, 0, 0), (2, 2, 0, 0)), cancel()])
    )

    assert decisions == {"b1": "completed"}
    assert store.batches["b1"].status == "completed"


async def test_chunk_failed_fails_the_batch_with_its_reason(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)
    await progress.handle_group(on_topic([done((0, 4, 0, 0))]))

    decisions = await progress.handle_group(
        on_topic([failed("The results store refused the chunk")])
    )

    assert decisions == {"b1": "failed"}
    assert store.finish_calls == [("b1", "failed", 4, 0, 0, "The results store refused the chunk")]
    assert KEY not in table
    assert [s.status for s in statuses(outputs)] == ["processing", "failed"]
    status = statuses(outputs)[-1]
    assert (status.status, status.reason) == ("failed", "The results store refused the chunk")


async def test_progress_of_a_batch_the_store_does_not_know_is_dead_lettered_and_writes_nothing(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    decisions = await progress.handle_group(on_topic([done((0, 4, 0, 0)), cancel(), failed("x")]))

    assert decisions == {"b1": "unknown"}
    assert table.writes == 0 and dict(table) == {}
    assert store.calls == ["get_batch"]
    letters = dead_letters(outputs)
    assert [(d.code, d.batch_id, d.source_offset) for d in letters] == [
        ("unknown_batch", "b1", 0),
        ("unknown_batch", "b1", 1),
        ("unknown_batch", "b1", 2),
    ]
    assert outputs.on(TOPICS.status) == []


async def test_a_message_keyed_otherwise_than_its_batch_is_dead_lettered_untouched(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)

    decisions = await progress.handle_group(on_topic([cancel()]), focus=lambda _: False)

    assert decisions == {"b1": "dead-lettered"}
    assert store.calls == [] and table.writes == 0
    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.error_type) == (
        "key_mismatch",
        "b1",
        "ProgressRefused",
    )
    assert store.batches["b1"].status == "processing"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'"chunks_done"',
        b'{"kind": "weird", "batch_id": "b1"}',
        b'{"kind": 7, "batch_id": "b1"}',
        b'{"batch_id": "b1", "chunks": []}',
        b'{"kind": "chunks_done", "batch_id": "b1"}',
        b'{"kind": "cancel", "batch_id": "b1", "requested_at": "2024-01-01T00:00:00Z", '
        b'"schema_version": 2}',
        b'{"kind": "chunks_done", "batch_id": "b1", "chunk_count": 3, "total": 10, '
        b'"chunks": [{"chunk_index": -1}], "at": "2024-01-01T00:00:00Z"}',
    ],
)
async def test_malformed_or_unknown_messages_are_dead_lettered_and_change_nothing(
    progress: ProgressHandler,
    store: FakeStore,
    table: CountingTable,
    outputs: FakeOutputs,
    payload: bytes,
) -> None:
    add_batch(store)

    assert await progress.handle_group(on_topic([payload])) == {}

    code = decode_progress(payload)
    assert code == ("undecodable" if payload == b"not json" else "invalid_event")
    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.source_topic, letter.source_offset) == (
        code,
        None,
        TOPICS.progress,
        0,
    )
    assert store.calls == [] and table.writes == 0


async def test_malformed_message_does_not_stop_the_rest_of_its_group(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    add_batch(store)

    decisions = await progress.handle_group(on_topic([b"\x00garbage", done((0, 4, 0, 0)), b"{}"]))

    assert decisions == {"b1": "counted"}
    assert table[KEY]["processed"] == 4
    assert [(d.code, d.source_offset) for d in dead_letters(outputs)] == [
        ("undecodable", 0),
        ("invalid_event", 2),
    ]


# the pure parts


def test_decode_progress_knows_each_kind() -> None:
    assert isinstance(decode_progress(done((0, 1, 0, 0))), ChunksDoneEvent)
    assert isinstance(decode_progress(cancel()), CancelCommand)
    assert isinstance(decode_progress(failed("x")), ChunkFailedEvent)


def test_new_state_of_a_queued_batch_is_processing_with_nothing_counted() -> None:
    batch = record_of(new_batch(total=10, chunk_count=3, batch_size=4, on_invalid="skip"))
    assert new_state(batch) == {
        "status": "processing",
        "total": 10,
        "chunk_count": 3,
        "on_invalid": "skip",
        "done": 0,
        "processed": 0,
        "filtered": 0,
        "invalid": 0,
        "marks": "0",
        "announced_at": 0.0,
    }


def test_new_state_of_a_finished_batch_keeps_its_status() -> None:
    batch = record_of(new_batch(), status="cancelled")
    assert new_state(batch)["status"] == "cancelled"


def test_count_chunks_returns_a_new_state_and_leaves_the_old_one_alone() -> None:
    state = new_state(record_of(new_batch(total=10, chunk_count=3, batch_size=4)))
    counts = [ChunkCounts(chunk_index=2, processed=2, filtered=0, invalid=0)]

    after = count_chunks(state, counts)

    assert (after["done"], after["processed"], after["marks"]) == (1, 2, "4")
    assert (state["done"], state["processed"], state["marks"]) == (0, 0, "0")
    assert count_chunks(after, counts) == after


def test_count_chunks_handles_chunk_indexes_beyond_64_bits() -> None:
    state = new_state(record_of(new_batch(total=100_000, chunk_count=100_000, batch_size=1)))
    counts = [ChunkCounts(chunk_index=i, processed=1) for i in (0, 70, 99_999)]

    after = count_chunks(state, counts)

    assert (after["done"], after["processed"]) == (3, 3)
    assert int(after["marks"], 16) == (1 << 0) | (1 << 70) | (1 << 99_999)


@pytest.mark.parametrize(
    ("on_invalid", "invalid", "expected"),
    [
        ("reject", 0, ("completed", None)),
        ("reject", 1, ("failed", REJECTED_REASON)),
        ("skip", 0, ("completed", None)),
        ("skip", 5, ("completed", None)),
    ],
)
def test_final_status(on_invalid: str, invalid: int, expected: tuple[str, str | None]) -> None:
    assert final_status(on_invalid, invalid) == expected


# processing on the status topic (queued is the API's: tests/integration/api/test_status_events.py)


async def test_processing_and_the_end_go_out_in_that_order(
    progress: ProgressHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    add_batch(store, status="queued")

    await progress.handle_group(on_topic([done((0, 4, 0, 0))]))
    await progress.handle_group(on_topic([done((1, 4, 0, 0), (2, 2, 0, 0))]))

    assert [(s.status, s.processed, s.chunks_done) for s in statuses(outputs)] == [
        ("processing", 4, 1),
        ("completed", 10, 3),
    ]


async def test_a_batch_ended_by_its_first_group_announces_only_its_end(
    progress: ProgressHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    store.add(new_batch(batch_id="b1", total=2, chunk_count=1, batch_size=2), status="queued")

    await progress.handle_group(on_topic([done((0, 2, 0, 0))]))

    assert [s.status for s in statuses(outputs)] == ["completed"]


async def test_processing_goes_out_at_most_once_a_second(
    progress: ProgressHandler,
    store: FakeStore,
    outputs: FakeOutputs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([1000.0, 1000.5, 1001.0])
    # The handler's own reference to the time module only: logging reads the real clock.
    monkeypatch.setattr("streams.progress_handler.time", SimpleNamespace(time=lambda: next(clock)))
    store.add(new_batch(batch_id="b1", total=40, chunk_count=4, batch_size=10))

    for index in range(3):
        await progress.handle_group(on_topic([done((index, 10, 0, 0))]))

    # At 1000.0 (the first counts) and 1001.0; not at 1000.5.
    assert [(s.status, s.processed) for s in statuses(outputs)] == [
        ("processing", 10),
        ("processing", 30),
    ]


async def test_a_chunk_failed_for_a_batch_the_api_abandoned_repeats_its_end(
    progress: ProgressHandler, store: FakeStore, table: CountingTable, outputs: FakeOutputs
) -> None:
    """The API announced it queued, then could not publish its chunks: the store says failed,
    and the status topic must end there too."""
    add_batch(store, status="failed")

    decisions = await progress.handle_group(on_topic([failed("Kafka was unavailable")]))

    assert decisions == {"b1": "refused"}
    assert [s.status for s in statuses(outputs)] == ["failed"]
    assert table.writes == 0 and store.finish_calls == []
