"""The transform handler's decisions, against an in-memory store and producer."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from schemas import jsonio
from schemas.events import (
    BatchStatusEvent,
    ChunkEvent,
    ChunkFailedEvent,
    ChunksDoneEvent,
    DeadLetterEvent,
    ResultChunkEvent,
    decode,
)
from store import encode_chunk
from streams import retry
from streams.admission import DEAD_LETTER_MESSAGES, DeadLetterCode
from streams.chunk_handler import ChunkHandler, result_chunk_bytes
from streams.dead_letters import SourceMessage
from streams.finishing import REJECTED_REASON, BatchFinisher
from streams.owners import StoredOwners, namespace_of
from streams.progress_handler import decode_progress
from telemetry.metrics import Metrics
from tests.unit.streams.builders import (
    SECRET,
    TOPICS,
    api_chunks,
    item,
    items,
    key_record,
    message,
    messages,
    owned_batch_id,
    owned_chunks,
    producer_chunks,
)
from tests.unit.streams.fakes import FakeOutputs, FakeStore, new_batch
from transforms import CompiledPipeline, PipelineRegistry

# helpers: what the handler sent, decoded


def results(outputs: FakeOutputs) -> list[ResultChunkEvent]:
    return [decode(ResultChunkEvent, m.value) for m in outputs.on(TOPICS.results)]


def dead_letters(outputs: FakeOutputs) -> list[DeadLetterEvent]:
    return [decode(DeadLetterEvent, m.value) for m in outputs.on(TOPICS.dead_letters)]


def codes(outputs: FakeOutputs) -> list[str]:
    return [letter.code for letter in dead_letters(outputs)]


def chunks_done(outputs: FakeOutputs) -> list[ChunksDoneEvent]:
    events = [decode_progress(m.value) for m in outputs.on(TOPICS.progress)]
    return [event for event in events if isinstance(event, ChunksDoneEvent)]


def chunks_failed(outputs: FakeOutputs) -> list[ChunkFailedEvent]:
    events = [decode_progress(m.value) for m in outputs.on(TOPICS.progress)]
    return [event for event in events if isinstance(event, ChunkFailedEvent)]


def statuses(outputs: FakeOutputs) -> list[BatchStatusEvent]:
    return [decode(BatchStatusEvent, m.value) for m in outputs.on(TOPICS.status)]


def counted(event: ChunksDoneEvent) -> list[tuple[int, int, int, int]]:
    return [(c.chunk_index, c.processed, c.filtered, c.invalid) for c in event.chunks]


def chunk_group_transactions(metrics: Metrics) -> float | None:
    assert metrics.registry is not None
    return metrics.registry.get_sample_value(
        "batch_store_transactions_total", {"kind": "chunk_group"}
    )


def raw_chunk(**overrides: Any) -> bytes:
    """A chunk message value built by hand (not necessarily consistent)."""
    values: dict[str, Any] = {
        "batch_id": "p-raw",
        "chunk_index": 0,
        "chunk_count": 1,
        "first_row": 0,
        "total": 1,
        "items": [item(0)],
    }
    values.update(overrides)
    return jsonio.dumps(values)


def register_api_batch(store: FakeStore, batch_id: str, total: int, batch_size: int) -> None:
    count = max(1, -(-total // batch_size))
    store.add(new_batch(batch_id=batch_id, total=total, chunk_count=count, batch_size=batch_size))


# producer batches


async def test_a_producer_batch_runs_the_exact_version_its_first_chunk_resolved_to(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    first = producer_chunks("p1", items(4), 2, pipeline="default")
    assert await handler.handle(messages(first[:1])) == ["transformed"]
    assert store.ensured[0].pipeline_ref == "default@1"

    # A later chunk naming a pipeline that does not exist still runs the batch's version.
    later = producer_chunks("p1", items(4), 2, pipeline="nope")[1:]
    assert await handler.handle(messages(later, first_offset=1)) == ["transformed"]
    assert outputs.on(TOPICS.dead_letters) == []


async def test_producer_batch_is_registered_and_transformed_in_one_store_transaction(
    handler: ChunkHandler,
    store: FakeStore,
    outputs: FakeOutputs,
    metrics: Metrics,
    registry: PipelineRegistry,
) -> None:
    records = items(10)
    decisions = await handler.handle(messages(producer_chunks("p1", records, 4)))

    assert decisions == ["transformed", "transformed", "transformed"]
    [registered] = store.ensured
    assert (registered.batch_id, registered.owner_key_id) == ("p1", None)
    assert (registered.total, registered.chunk_count, registered.batch_size) == (10, 3, 4)
    assert store.calls_to("ensure_batch") == 1
    assert store.calls_to("put_chunk_group") == 1
    assert store.committed_groups == [[("p1", 0), ("p1", 1), ("p1", 2)]]
    assert chunk_group_transactions(metrics) == 1
    assert store.batches["p1"].status == "processing"

    sent = results(outputs)
    pipeline = registry.get("default")
    assert [(r.chunk_index, r.first_row, r.chunk_count) for r in sent] == [
        (0, 0, 3),
        (1, 4, 3),
        (2, 8, 3),
    ]
    for result in sent:
        rows = records[result.first_row : result.first_row + 4]
        assert result.results == pipeline.run(rows, result.first_row).results
        assert result.errors == []
    assert sent[0].results[1] == {
        "timestamp": "2024-01-01T00:00:00Z",
        "amount": Decimal("1.50"),
        "email": "u***1@example.com",
        "phone": "***-0123",
    }
    assert {m.key for m in outputs.on(TOPICS.results)} == {b"p1"}

    [done] = chunks_done(outputs)
    assert (done.batch_id, done.total, done.chunk_count, done.on_invalid) == ("p1", 10, 3, "reject")
    assert counted(done) == [(0, 4, 0, 0), (1, 4, 0, 0), (2, 2, 0, 0)]
    assert [m.key for m in outputs.on(TOPICS.progress)] == [b"p1"]
    assert outputs.on(TOPICS.dead_letters) == []
    assert outputs.send_calls == 1


async def test_group_of_two_batches_sends_one_progress_message_per_batch(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    first = producer_chunks("p1", items(4), 2)
    second = producer_chunks("p2", items(3), 2)
    group = messages([first[0], second[0], first[1], second[1]])

    assert await handler.handle(group) == ["transformed"] * 4

    assert store.committed_groups == [[("p1", 0), ("p2", 0), ("p1", 1), ("p2", 1)]]
    done = {event.batch_id: counted(event) for event in chunks_done(outputs)}
    assert done == {"p1": [(0, 2, 0, 0), (1, 2, 0, 0)], "p2": [(0, 2, 0, 0), (1, 1, 0, 0)]}
    assert len(outputs.on(TOPICS.progress)) == 2


async def test_empty_producer_batch_is_registered_and_reported_done(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    assert await handler.handle(messages(producer_chunks("p0", [], 5))) == ["transformed"]

    [registered] = store.ensured
    assert (registered.total, registered.chunk_count, registered.batch_size) == (0, 1, 1)
    [result] = results(outputs)
    assert (result.results, result.errors) == ([], [])
    # One chunk: the batch ends as its chunk is stored, with no progress message.
    assert chunks_done(outputs) == []
    [status] = statuses(outputs)
    assert (status.status, status.total, status.processed, status.chunks_done) == (
        "completed",
        0,
        0,
        1,
    )


async def test_chunk_past_chunk_count_is_dead_lettered_and_touches_no_batch(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    value = raw_chunk(chunk_index=3, chunk_count=3, first_row=6, total=7, items=[item(0)])

    assert await handler.handle([message(value, offset=41)]) == ["dead-lettered"]

    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("index_out_of_range", "p-raw", 3)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        TOPICS.requests,
        0,
        41,
    )
    assert letter.error_type == "ChunkRefused"
    assert store.calls_to("ensure_batch") == 0 and store.calls_to("put_chunk_group") == 0
    assert store.batches == {}
    assert outputs.on(TOPICS.progress) == [] and outputs.on(TOPICS.results) == []


async def test_producer_chunk_disagreeing_with_its_registered_batch_is_refused(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    # Chunk 0 registers a batch of 10 cut at 4; a chunk cut at 5 does not belong to it.
    good = producer_chunks("p1", items(10), 4)[0]
    other_cut = producer_chunks("p1", items(10), 5)[1]

    assert await handler.handle(messages([good, other_cut])) == ["transformed", "dead-lettered"]

    assert codes(outputs) == ["batch_mismatch"]
    assert store.committed_groups == [[("p1", 0)]]
    assert chunks_failed(outputs) == []


# API batches: signatures


async def test_unsigned_chunk_of_an_api_batch_is_dead_lettered_and_touches_nothing_of_it(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "victim", total=10, batch_size=10)
    before = store.batches["victim"]
    forged = producer_chunks("victim", items(10), 10)

    assert await handler.handle(messages(forged)) == ["dead-lettered"]

    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("bad_signature", "victim", 0)
    assert [m.key for m in outputs.on(TOPICS.dead_letters)] == [b"victim"]
    assert store.calls_to("put_chunk_group") == 0 and store.calls_to("ensure_batch") == 0
    assert store.chunks == {}
    assert store.batches["victim"] == before
    assert outputs.on(TOPICS.progress) == []  # neither chunks_done nor chunk_failed
    assert outputs.on(TOPICS.results) == []


async def test_chunk_of_an_api_batch_signed_with_another_secret_is_refused(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=3, batch_size=3)
    forged = api_chunks("a1", items(3), 3, secret=b"not-the-secret")

    assert await handler.handle(messages(forged)) == ["dead-lettered"]
    assert codes(outputs) == ["bad_signature"]
    assert store.chunks == {}


async def test_signed_chunks_of_an_api_batch_are_transformed(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=5, batch_size=3)

    assert await handler.handle(messages(api_chunks("a1", items(5), 3))) == ["transformed"] * 2

    assert store.calls_to("ensure_batch") == 0
    assert sorted(store.chunks) == [("a1", 0), ("a1", 1)]
    assert store.batches["a1"].status == "processing"
    [done] = chunks_done(outputs)
    assert counted(done) == [(0, 3, 0, 0), (1, 2, 0, 0)]
    assert outputs.on(TOPICS.dead_letters) == []


async def test_signed_chunk_of_an_unregistered_batch_is_unknown_batch(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    assert await handler.handle(messages(api_chunks("ghost", items(2), 2))) == ["dead-lettered"]

    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("unknown_batch", "ghost", 0)
    assert store.calls_to("ensure_batch") == 0 and store.batches == {}
    assert outputs.on(TOPICS.progress) == []


async def test_signed_chunk_that_disagrees_with_its_api_batch_is_refused(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=4, batch_size=2)
    # Signed, but cut at 4 where the batch was registered cut at 2.
    [(key, value, headers)] = api_chunks("a1", items(4), 4)

    decisions = await handler.handle([SourceMessage(TOPICS.requests, 0, 0, key, value, headers)])

    assert decisions == ["dead-lettered"]
    assert codes(outputs) == ["batch_mismatch"]
    assert chunks_failed(outputs) == []


# messages that do not decode


# batches owned by an API key (streams.owners)

OWNER_KEY = "bl_owner-key"
OTHER_KEY = "bl_other-key"


def owned_setup(store: FakeStore) -> str:
    store.api_keys = [key_record(OWNER_KEY, "key-owner"), key_record(OTHER_KEY, "key-other")]
    return owned_batch_id(OWNER_KEY, "orders-1")


async def test_chunks_signed_by_their_namespace_key_register_a_batch_that_key_owns(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    batch_id = owned_setup(store)

    decisions = await handler.handle(messages(owned_chunks(OWNER_KEY, batch_id, items(5), 3)))

    assert decisions == ["transformed", "transformed"]
    [registered] = store.ensured
    assert (registered.batch_id, registered.owner_key_id) == (batch_id, "key-owner")
    assert sorted(store.chunks) == [(batch_id, 0), (batch_id, 1)]
    assert outputs.on(TOPICS.dead_letters) == []
    assert store.calls_to("list_api_keys") == 1  # the keys are read once, not per chunk


@pytest.mark.parametrize(
    ("signing_key", "expected_code"),
    [(OTHER_KEY, "bad_signature"), (None, "bad_signature")],
    ids=["another key's signature", "unsigned"],
)
async def test_a_namespaced_chunk_not_signed_by_its_owner_touches_nothing(
    handler: ChunkHandler,
    store: FakeStore,
    outputs: FakeOutputs,
    signing_key: str | None,
    expected_code: str,
) -> None:
    batch_id = owned_setup(store)
    await handler.handle(messages(owned_chunks(OWNER_KEY, batch_id, items(6), 3)[:1]))
    before = dict(store.chunks), store.batches[batch_id]
    records = items(6, start=100)
    forged = (
        owned_chunks(signing_key, batch_id, records, 3)
        if signing_key
        else producer_chunks(batch_id, records, 3)
    )

    assert await handler.handle(messages(forged)) == ["dead-lettered"] * 2

    assert codes(outputs) == [expected_code] * 2
    assert (dict(store.chunks), store.batches[batch_id]) == before
    assert [event.batch_id for event in chunks_failed(outputs)] == []


async def test_a_producer_s_ingest_topic_admits_only_batches_of_its_namespace(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    batch_id = owned_setup(store)
    own_topic = TOPICS.ingest(namespace_of(batch_id) or "")
    others_topic = TOPICS.ingest(namespace_of(owned_batch_id(OTHER_KEY, "x")) or "")
    chunks = owned_chunks(OWNER_KEY, batch_id, items(2), 2)

    # On the other producer's ingest topic, even a chunk its owner signed is refused...
    assert await handler.handle(messages(chunks, topic=others_topic)) == ["dead-lettered"]
    assert codes(outputs) == ["wrong_ingest"]
    # ...and so is a batch ID of no namespace, which the shared requests topic would admit.
    plain = producer_chunks("plain-1", items(2), 2)
    assert await handler.handle(messages(plain, topic=own_topic)) == ["dead-lettered"]
    assert store.calls_to("ensure_batch") == 0 and store.chunks == {}

    assert await handler.handle(messages(chunks, topic=own_topic)) == ["transformed"]
    assert store.batches[batch_id].owner_key_id == "key-owner"


async def test_a_namespace_of_no_active_key_is_unknown_owner(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    store.api_keys = [key_record(OWNER_KEY, "key-owner", revoked=True)]
    batch_id = owned_batch_id(OWNER_KEY, "late")
    stranger = owned_batch_id("bl_never-stored", "x")

    chunks = owned_chunks(OWNER_KEY, batch_id, items(2), 2)
    chunks += owned_chunks("bl_never-stored", stranger, items(2), 2)
    assert await handler.handle(messages(chunks)) == ["dead-lettered"] * 2

    assert codes(outputs) == ["unknown_owner"] * 2
    assert store.batches == {} and store.chunks == {}


async def test_an_owned_chunk_cannot_name_an_api_batch(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    """API batch IDs carry no namespace, so only the API's signature admits their chunks."""
    owned_setup(store)
    register_api_batch(store, "batch_0a1b", total=2, batch_size=2)

    forged = owned_chunks(OWNER_KEY, "batch_0a1b", items(2), 2)
    assert await handler.handle(messages(forged)) == ["dead-lettered"]

    assert codes(outputs) == ["bad_signature"]
    assert store.chunks == {}


async def test_undecodable_bytes_are_dead_lettered_without_a_batch(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    value = b'{"batch_id": "a1", "items": [\xff'

    assert await handler.handle([message(value, key=b"a1", offset=9)]) == ["dead-lettered"]

    [sent] = outputs.on(TOPICS.dead_letters)
    letter = decode(DeadLetterEvent, sent.value)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("undecodable", None, None)
    assert letter.error_type == "JSONDecodeError"
    assert letter.error == DEAD_LETTER_MESSAGES[DeadLetterCode.UNDECODABLE]
    assert letter.source_offset == 9
    assert sent.key is None
    assert outputs.on(TOPICS.progress) == []
    assert store.calls == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (raw_chunk(chunk_index=2**63), "chunk_index"),
        (raw_chunk(chunk_count=10**6), "chunk_count"),
        (raw_chunk(items="not a list"), "items"),
        (raw_chunk(unexpected=1), "unexpected"),
        (b"[1, 2]", "$"),
    ],
)
async def test_schema_invalid_chunk_is_dead_lettered_as_invalid_chunk(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, value: bytes, field: str
) -> None:
    assert await handler.handle([message(value)]) == ["dead-lettered"]

    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.error_type) == (
        "invalid_chunk",
        None,
        "ValidationError",
    )
    assert letter.error == DEAD_LETTER_MESSAGES[DeadLetterCode.INVALID_CHUNK]
    assert outputs.on(TOPICS.progress) == []
    assert store.calls == []


# finished batches and failing pipelines


async def test_chunk_of_a_cancelled_batch_is_skipped_and_nothing_is_stored(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    store.add(new_batch(batch_id="a1", total=2, batch_size=2), status="cancelled")

    assert await handler.handle(messages(api_chunks("a1", items(2), 2))) == ["skipped"]

    assert store.calls_to("put_chunk_group") == 0
    assert store.batches["a1"].status == "cancelled"
    # The batch's one chunk came again: its stored final status is repeated, nothing else.
    assert [m.topic for m in outputs.sent] == [TOPICS.status]
    assert [s.status for s in statuses(outputs)] == ["cancelled"]


async def test_cancel_is_noticed_by_the_next_group(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=4, batch_size=2)
    first, second = messages(api_chunks("a1", items(4), 2))
    assert await handler.handle([first]) == ["transformed"]
    store.batches["a1"] = dataclasses.replace(store.batches["a1"], status="cancelled")

    assert await handler.handle([second]) == ["skipped"]
    assert sorted(store.chunks) == [("a1", 0)]


async def test_a_cancel_between_reading_and_storing_a_group_leaves_it_unstored_and_unannounced(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=4, batch_size=2)
    group = await handler.prepare(messages(api_chunks("a1", items(4), 2)))
    store.batches["a1"] = dataclasses.replace(store.batches["a1"], status="cancelled")

    await handler.apply(group)

    assert group.decisions == ["skipped", "skipped"]
    assert store.chunks == {}
    assert outputs.sent == []


async def test_a_one_chunk_batch_ends_in_the_transaction_that_stores_its_chunk(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=2, batch_size=2)

    assert await handler.handle(messages(api_chunks("a1", items(2), 2))) == ["transformed"]

    assert store.calls == ["get_batches", "put_chunk_group"]
    stored = store.batches["a1"]
    assert (stored.status, stored.processed, stored.filtered) == ("completed", 2, 0)
    assert stored.started_at is not None and stored.duration is not None
    # The result chunk and the final status go out in the one round of sends.
    assert outputs.send_calls == 1
    assert [m.topic for m in outputs.sent] == [TOPICS.results, TOPICS.status]
    [status] = statuses(outputs)
    assert (status.status, status.processed, status.chunks_done, status.chunk_count) == (
        "completed",
        2,
        1,
        1,
    )


async def test_a_one_chunk_batch_cancelled_before_its_chunk_is_stored_stays_cancelled(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    register_api_batch(store, "a1", total=2, batch_size=2)
    group = await handler.prepare(messages(api_chunks("a1", items(2), 2)))
    store.batches["a1"] = dataclasses.replace(store.batches["a1"], status="cancelled")

    await handler.apply(group)

    assert group.decisions == ["skipped"]
    assert store.batches["a1"].status == "cancelled" and store.chunks == {}
    assert outputs.sent == []


async def test_a_one_chunk_batch_delivered_again_repeats_its_final_status_and_stores_nothing(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    # A worker that ended the batch and died before announcing it: the chunk comes again.
    register_api_batch(store, "a1", total=2, batch_size=2)
    group = messages(api_chunks("a1", items(2), 2))
    await handler.handle(group)
    ended = store.batches["a1"]
    outputs.sent.clear()

    assert await handler.handle(group) == ["skipped"]

    assert store.batches["a1"] == ended
    assert store.calls_to("put_chunk_group") == 1
    assert [m.topic for m in outputs.sent] == [TOPICS.status]
    [status] = statuses(outputs)
    assert (status.status, status.processed) == ("completed", 2)


async def test_a_running_batch_is_read_once_per_group_and_started_once(
    handler: ChunkHandler, store: FakeStore
) -> None:
    register_api_batch(store, "a1", total=6, batch_size=2)
    first, second, third = messages(api_chunks("a1", items(6), 2))

    assert await handler.handle([first, second]) == ["transformed", "transformed"]
    assert await handler.handle([third]) == ["transformed"]

    assert store.calls_to("get_batches") == 2
    assert store.batches["a1"].status == "processing"


async def test_unknown_pipeline_fails_the_batch_the_chunk_proved_it_belongs_to(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    chunks = producer_chunks("p1", items(2), 2, pipeline="nope")

    assert await handler.handle(messages(chunks)) == ["dead-lettered"]

    assert store.batches["p1"].pipeline_ref == "nope"  # admitted, so registered
    assert store.chunks == {} and store.calls_to("put_chunk_group") == 0
    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("unknown_pipeline", "p1", 0)
    assert letter.error_type == "UnknownPipelineError"
    # Codes and numbers only: the pipeline name the producer chose is repeated nowhere.
    assert letter.error == DEAD_LETTER_MESSAGES[DeadLetterCode.UNKNOWN_PIPELINE]
    [failed] = chunks_failed(outputs)
    assert (failed.batch_id, failed.chunk_index) == ("p1", 0)
    assert failed.reason == f"Chunk 0 was dead-lettered (unknown_pipeline): {letter.error}"
    assert b"nope" not in outputs.everything()
    assert chunks_done(outputs) == []
    assert outputs.on(TOPICS.results) == []


# mixed groups


async def test_mixed_group_stores_the_good_chunks_in_one_transaction_and_dead_letters_the_rest(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, metrics: Metrics
) -> None:
    register_api_batch(store, "a1", total=4, batch_size=2)
    a0, a1 = api_chunks("a1", items(4), 2)
    forged = producer_chunks("a1", items(4), 2)[1]
    [p0] = producer_chunks("p1", items(1), 1)
    out_of_range = (b"k", raw_chunk(chunk_index=5, chunk_count=2, first_row=10, total=11))
    group = messages([a0, forged, p0, out_of_range, a1], first_offset=100)

    decisions = await handler.handle(group)

    assert decisions == [
        "transformed",
        "dead-lettered",
        "transformed",
        "dead-lettered",
        "transformed",
    ]
    assert store.calls_to("put_chunk_group") == 1
    assert store.committed_groups == [[("a1", 0), ("p1", 0), ("a1", 1)]]
    assert chunk_group_transactions(metrics) == 1
    assert [(d.code, d.source_offset) for d in dead_letters(outputs)] == [
        ("bad_signature", 101),
        ("index_out_of_range", 103),
    ]
    assert {e.batch_id: counted(e) for e in chunks_done(outputs)} == {
        "a1": [(0, 2, 0, 0), (1, 2, 0, 0)],
    }
    # p1 has one chunk: ended in the group's transaction and announced, not counted.
    assert [(e.batch_id, e.status, e.processed) for e in statuses(outputs)] == [
        ("p1", "completed", 1)
    ]
    assert store.batches["p1"].status == "completed"
    assert chunks_failed(outputs) == []
    assert [(r.batch_id, r.chunk_index) for r in results(outputs)] == [
        ("a1", 0),
        ("p1", 0),
        ("a1", 1),
    ]


async def test_decisions_follow_message_order_when_a_message_does_not_decode(
    handler: ChunkHandler,
) -> None:
    first, second = producer_chunks("p1", items(4), 2)
    group = messages([first, (b"k", b"not json"), second])

    decisions = await handler.handle(group)

    assert decisions == ["transformed", "dead-lettered", "transformed"]


async def test_dead_letters_never_carry_the_raw_items(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs
) -> None:
    secret_email = "zanzibar.quokka.7f3a@example.org"
    planted = [item(0, email=secret_email)]
    register_api_batch(store, "a1", total=1, batch_size=1)
    store.refused = {("p-refused", 0)}
    group = messages(
        [
            *producer_chunks("p-good", planted, 1),  # transformed: masked in its result
            *producer_chunks("a1", planted, 1),  # bad_signature
            *api_chunks("ghost", planted, 1),  # unknown_batch
            *producer_chunks("p-pipeline", planted, 1, pipeline="nope"),  # unknown_pipeline
            *producer_chunks("p-refused", planted, 1),  # store_refused
            (b"k", raw_chunk(items=planted, total=2)),  # wrong_item_count
            (b"k", raw_chunk(items=planted, chunk_index=2**63)),  # invalid_chunk
            (b"k", raw_chunk(items=planted)[:-3]),  # undecodable
        ]
    )

    await handler.handle(group)

    assert sorted(codes(outputs)) == sorted(
        [
            "bad_signature",
            "unknown_batch",
            "unknown_pipeline",
            "store_refused",
            "wrong_item_count",
            "invalid_chunk",
            "undecodable",
        ]
    )
    leaking = [m.topic for m in outputs.sent if secret_email.encode() in m.value]
    assert leaking == []
    assert not any(b"zanzibar" in m.value for m in outputs.sent if m.topic != TOPICS.results)
    masked = [r.results[0]["email"] for r in results(outputs)]
    assert masked == ["z***a@example.org"]


# invalid records


async def test_reject_batch_with_an_invalid_item_reports_the_error_and_counts_it(
    handler: ChunkHandler, outputs: FakeOutputs
) -> None:
    records = [item(0), item(1, amt="abc"), item(2)]
    chunks = producer_chunks("p1", records, 3, on_invalid="reject")

    assert await handler.handle(messages(chunks)) == ["transformed"]

    [result] = results(outputs)
    assert [r["amount"] for r in result.results] == [Decimal("0.50"), Decimal("2.50")]
    assert result.errors == [{"row": 1, "field": "amount", "reason": "Invalid number format"}]
    assert chunks_done(outputs) == []
    [status] = statuses(outputs)
    assert (status.status, status.processed, status.filtered, status.invalid) == (
        "failed",
        2,
        1,
        1,
    )
    assert status.reason == REJECTED_REASON


# the store refusing or failing


async def test_store_refusing_the_group_stores_the_others_and_dead_letters_the_refused_chunk(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, metrics: Metrics
) -> None:
    store.refused = {("p1", 1)}

    await handler.handle(messages(producer_chunks("p1", items(6), 2)))

    assert store.put_groups == [
        [("p1", 0), ("p1", 1), ("p1", 2)],
        [("p1", 0)],
        [("p1", 1)],
        [("p1", 2)],
    ]
    assert sorted(store.chunks) == [("p1", 0), ("p1", 2)]
    assert chunk_group_transactions(metrics) == 2
    [letter] = dead_letters(outputs)
    assert (letter.code, letter.batch_id, letter.chunk_index) == ("store_refused", "p1", 1)
    assert letter.error_type == "StoreError"
    [failed] = chunks_failed(outputs)
    assert (failed.batch_id, failed.chunk_index) == ("p1", 1)
    [done] = chunks_done(outputs)
    assert counted(done) == [(0, 2, 0, 0), (2, 2, 0, 0)]
    assert [r.chunk_index for r in results(outputs)] == [0, 2]


async def test_chunk_the_store_refuses_is_reported_as_dead_lettered(
    handler: ChunkHandler, store: FakeStore
) -> None:
    store.refused = {("p1", 1)}

    decisions = await handler.handle(messages(producer_chunks("p1", items(6), 2)))

    assert decisions == ["transformed", "dead-lettered", "transformed"]


async def test_transient_store_errors_are_retried_and_the_group_stored_once(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, metrics: Metrics
) -> None:
    store.unavailable_puts = 2

    decisions = await handler.handle(messages(producer_chunks("p1", items(4), 2)))

    assert decisions == ["transformed", "transformed"]
    assert len(store.put_groups) == 3
    assert store.committed_groups == [[("p1", 0), ("p1", 1)]]
    assert chunk_group_transactions(metrics) == 1
    assert outputs.on(TOPICS.dead_letters) == []
    assert len(chunks_done(outputs)) == 1


async def test_store_down_for_good_dead_letters_the_chunks_as_gave_up(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, metrics: Metrics
) -> None:
    store.unavailable_puts = -1

    await handler.handle(messages(producer_chunks("p1", items(4), 2)))

    # The group, then each chunk on its own, every call tried MAX_ATTEMPTS times.
    assert len(store.put_groups) == 3 * retry.MAX_ATTEMPTS
    assert store.chunks == {} and store.committed_groups == []
    assert chunk_group_transactions(metrics) is None
    assert [(d.code, d.chunk_index, d.error_type) for d in dead_letters(outputs)] == [
        ("gave_up", 0, "GaveUp"),
        ("gave_up", 1, "GaveUp"),
    ]
    assert [(f.batch_id, f.chunk_index) for f in chunks_failed(outputs)] == [("p1", 0), ("p1", 1)]
    assert chunks_done(outputs) == [] and outputs.on(TOPICS.results) == []


async def test_transient_send_failures_are_retried_and_everything_sent_once(
    handler: ChunkHandler, outputs: FakeOutputs
) -> None:
    outputs.failures = 2
    outputs.error = KafkaConnectionError

    await handler.handle(messages(producer_chunks("p1", items(2), 2)))

    assert outputs.send_calls == 3
    assert [m.topic for m in outputs.sent] == [TOPICS.results, TOPICS.status]


# redelivery


async def test_redelivered_group_stores_nothing_new_and_reports_progress_again(
    store: FakeStore, outputs: FakeOutputs, metrics: Metrics, registry: PipelineRegistry
) -> None:
    group = messages(producer_chunks("p1", items(4), 2))

    def fresh_handler() -> ChunkHandler:  # a worker restarted after a crash
        return ChunkHandler(
            store=store,
            registry=registry,
            outputs=outputs,
            finisher=BatchFinisher(
                store=store, outputs=outputs, metrics=metrics, status_topic=TOPICS.status
            ),
            metrics=metrics,
            topics=TOPICS,
            secret=SECRET,
            owners=StoredOwners(store),
        )

    assert await fresh_handler().handle(group) == ["transformed", "transformed"]
    stored = dict(store.chunks)
    started_at = store.batches["p1"].started_at
    assert await fresh_handler().handle(group) == ["transformed", "transformed"]

    assert store.calls_to("ensure_batch") == 1
    assert store.chunks == stored
    assert all(store.chunks[key] is stored[key] for key in stored)
    assert store.batches["p1"].started_at == started_at
    done = chunks_done(outputs)
    assert len(done) == 2 and counted(done[0]) == counted(done[1])
    assert len(results(outputs)) == 4


# result chunk encoding


@pytest.mark.parametrize(
    "records",
    [
        [item(0), item(1, amt="1e3"), item(2, amt="abc")],
        [],
        [item(0, amt="0.10"), {"not": "valid"}],
    ],
)
def test_result_chunk_bytes_equal_the_result_chunk_event_encoding(
    registry: PipelineRegistry, records: list[Any]
) -> None:
    chunk = ChunkEvent(
        batch_id="b1",
        chunk_index=2,
        chunk_count=5,
        first_row=20,
        total=50,
        items=records,
    )
    outcome = registry.get("default").run(chunk.items, chunk.first_row)
    errors = [error.as_dict() for error in outcome.errors]
    encoded = encode_chunk("b1", 2, 20, outcome.results, errors)
    expected = ResultChunkEvent(
        batch_id="b1",
        chunk_index=2,
        chunk_count=5,
        first_row=20,
        results=outcome.results,
        errors=sorted(errors, key=lambda e: e["row"]),
    ).to_bytes()

    assert result_chunk_bytes(chunk, encoded) == expected


async def test_sent_result_chunk_is_the_result_chunk_event_of_the_chunk(
    handler: ChunkHandler, outputs: FakeOutputs, registry: PipelineRegistry
) -> None:
    records = [item(0), item(1, phone="12")]
    [(key, value)] = producer_chunks("p1", records, 2)

    await handler.handle(messages([(key, value)]))

    outcome = registry.get("default").run(records, 0)
    expected = ResultChunkEvent(
        batch_id="p1",
        chunk_index=0,
        chunk_count=1,
        first_row=0,
        results=outcome.results,
        errors=[error.as_dict() for error in outcome.errors],
    )
    [sent] = outputs.on(TOPICS.results)
    assert sent.value == expected.to_bytes()
    assert sent.key == b"p1"


async def test_a_failing_pipeline_is_dead_lettered_with_its_code_and_not_its_message(
    handler: ChunkHandler, store: FakeStore, outputs: FakeOutputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = "zanzibar.quokka.7f3a"

    def explode(*_: Any) -> Any:
        raise ValueError(f"field {planted!r} broke the engine")

    monkeypatch.setattr(CompiledPipeline, "run", explode)

    assert await handler.handle(messages(producer_chunks("p1", items(2), 2))) == ["dead-lettered"]

    [letter] = dead_letters(outputs)
    assert (letter.code, letter.error_type) == ("pipeline_failed", "ValueError")
    assert letter.error == DEAD_LETTER_MESSAGES[DeadLetterCode.PIPELINE_FAILED]
    [failed] = chunks_failed(outputs)
    assert failed.reason == f"Chunk 0 was dead-lettered (pipeline_failed): {letter.error}"
    assert planted.encode() not in outputs.everything()
