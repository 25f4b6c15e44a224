"""The record stream's decisions, against an in-memory producer: one record out per record in,
dead letters with codes and field errors, never a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas import jsonio
from schemas.events import DeadLetterEvent, decode
from streams.dead_letters import SourceMessage
from streams.record_stream import RecordHandler
from telemetry.metrics import Metrics
from tests.unit.streams.builders import TOPICS, item
from tests.unit.streams.fakes import FakeOutputs
from transforms import PipelineRegistry

PLANTED = "planted-value-7731"


def record(
    value: Any,
    *,
    offset: int = 40,
    key: bytes | None = b"order-1",
    topic: str = TOPICS.records,
    **headers: bytes,
) -> SourceMessage:
    raw = value if isinstance(value, bytes) else jsonio.dumps(value)
    named = tuple((name.replace("_", "-"), v) for name, v in headers.items())
    return SourceMessage(topic, 2, offset, key, raw, named)


def handler(registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics) -> RecordHandler:
    return RecordHandler(registry=registry, outputs=outputs, metrics=metrics, topics=TOPICS)


def letters(outputs: FakeOutputs) -> list[DeadLetterEvent]:
    return [decode(DeadLetterEvent, m.value) for m in outputs.on(TOPICS.dead_letters)]


async def test_each_record_gives_one_output_keyed_as_it_was(
    registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics
) -> None:
    messages = [record(item(1), offset=40), record(item(2), offset=41, key=b"order-2")]

    decisions = await handler(registry, outputs, metrics).handle(messages)

    assert decisions == ["transformed", "transformed"]
    sent = outputs.on(TOPICS.record_results)
    assert [m.key for m in sent] == [b"order-1", b"order-2"]
    first = jsonio.loads(sent[0].value)
    assert first == registry.get("default").run([item(1)]).results[0]
    assert dict(sent[1].headers) == {
        "batchline-pipeline": b"default@1",
        "batchline-source": b"2@41",
        "batchline-outcome": b"transformed",
    }
    assert outputs.send_calls == 1  # the whole group in one round


async def test_a_record_from_a_producer_s_own_topic_is_marked_with_its_namespace_alone(
    registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics
) -> None:
    own = TOPICS.producer_records("p0123456789abcdef")
    # A header the producer wrote itself is not what the worker's output says.
    forged = b"p" + b"f" * 16
    messages = [
        record(item(1), offset=40, topic=own),
        record(item(2), offset=41, topic=own, batchline_producer=forged),
        record(item(3), offset=42, batchline_producer=forged),  # the shared topic
    ]

    await handler(registry, outputs, metrics).handle(messages)

    marks = [
        [value for name, value in m.headers if name == "batchline-producer"]
        for m in outputs.on(TOPICS.record_results)
    ]
    assert marks == [[b"p0123456789abcdef"], [b"p0123456789abcdef"], []]


async def test_the_pipeline_header_picks_the_version(
    registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics
) -> None:
    message = record(item(1), batchline_pipeline=b"default@1")

    assert await handler(registry, outputs, metrics).handle([message]) == ["transformed"]

    [sent] = outputs.on(TOPICS.record_results)
    assert dict(sent.headers)["batchline-pipeline"] == b"default@1"


async def test_invalid_fields_are_dead_lettered_with_row_field_reason_and_no_value(
    registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics
) -> None:
    bad = item(1, amt=PLANTED, email=PLANTED)

    assert await handler(registry, outputs, metrics).handle([record(bad, offset=77)]) == [
        "dead-lettered"
    ]

    [letter] = letters(outputs)
    assert (letter.code, letter.source_offset, letter.batch_id) == ("invalid_record", 77, None)
    assert letter.errors is not None
    # The record's first invalid field, as the API's errors report it.
    assert [(e.row, e.field, e.reason) for e in letter.errors] == [
        (77, "amount", "Invalid number format")
    ]
    assert outputs.on(TOPICS.record_results) == []
    assert all(PLANTED not in m.value.decode() for m in outputs.sent)


async def test_what_cannot_be_a_record_is_dead_lettered_by_code(
    registry: PipelineRegistry, outputs: FakeOutputs, metrics: Metrics
) -> None:
    messages = [
        record(b"\x00 not json"),
        record([item(1)]),  # an array, not one object
        record(item(1), batchline_pipeline=b"nope@9"),
        record(item(1), batchline_pipeline=b"\xff\xfe"),
    ]

    decisions = await handler(registry, outputs, metrics).handle(messages)

    assert decisions == ["dead-lettered"] * 4
    assert [letter.code for letter in letters(outputs)] == [
        "undecodable",
        "invalid_record",
        "unknown_pipeline",
        "invalid_record",
    ]


PAID = """\
name: paid
version: 1
fields:
  - source: amt
    target: amount
    parse: decimal
filters:
  - {op: equals, field: amount, value: "0"}
"""


async def test_a_record_a_filter_drops_still_gives_one_output_saying_so(
    outputs: FakeOutputs, metrics: Metrics, tmp_path: Path
) -> None:
    (tmp_path / "paid.yaml").write_text(PAID)
    registry = PipelineRegistry.load(tmp_path, hash_secret=b"test")
    messages = [
        record({"amt": "0"}, batchline_pipeline=b"paid"),
        record({"amt": "5.10"}, offset=41, batchline_pipeline=b"paid"),
    ]

    assert await handler(registry, outputs, metrics).handle(messages) == [
        "filtered",
        "transformed",
    ]

    dropped, kept = outputs.on(TOPICS.record_results)
    assert (dropped.value, dict(dropped.headers)["batchline-outcome"]) == (b"null", b"filtered")
    assert str(jsonio.loads(kept.value)["amount"]) == "5.10"
