"""Kafka payloads: exact decimals on the wire, versioned, and their published schemas current."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas import jsonio
from schemas.events import ChunkEvent, DeadLetterEvent, decode
from schemas.export import DEFAULT_DIR, schema_files


def test_chunk_event_round_trips_decimals_with_their_scale() -> None:
    event = ChunkEvent(
        batch_id="b1",
        chunk_index=0,
        chunk_count=1,
        first_row=0,
        total=1,
        items=[{"amt": Decimal("100.50")}],
    )
    payload = event.to_bytes()
    assert b'"amt":100.50' in payload
    assert decode(ChunkEvent, payload).items == [{"amt": Decimal("100.50")}]


@pytest.mark.parametrize("duplicate_rows", [None, [], [3, 7]])
def test_chunk_bytes_are_what_the_generic_event_encoding_writes(
    duplicate_rows: list[int] | None,
) -> None:
    """ChunkEvent encodes its fields without model_dump; the bytes must not change by it."""
    items = [
        {"amt": Decimal("100.50"), "none": None, "nested": {"a": [1, None, Decimal("1E+2")]}},
        [True, False, "x", -3],
        None,
        "text",
    ]
    event = ChunkEvent(
        batch_id="batch_x",
        chunk_index=2,
        chunk_count=5,
        first_row=1000,
        total=4100,
        pipeline="default@2",
        on_invalid="skip",
        items=items,
        duplicate_rows=duplicate_rows,
    )
    generic = jsonio.dumps(event.model_dump(mode="python", exclude_none=True))
    assert event.to_bytes() == generic
    assert decode(ChunkEvent, event.to_bytes()) == event


def test_unknown_schema_version_is_rejected() -> None:
    with pytest.raises(ValidationError):
        decode(
            ChunkEvent,
            b'{"schema_version": 2, "batch_id": "b", "chunk_index": 0, '
            b'"chunk_count": 1, "first_row": 0, "total": 0, "items": []}',
        )


def test_dead_letter_carries_where_the_message_is_not_what_it_held() -> None:
    letter = DeadLetterEvent(
        source_topic="t",
        source_partition=1,
        source_offset=7,
        code="undecodable",
        error_type="X",
        error="bad",
        at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert "items" not in letter.model_dump()


def test_published_json_schemas_match_the_models() -> None:
    stale = [
        name
        for name, text in schema_files().items()
        if not (DEFAULT_DIR / name).exists() or (DEFAULT_DIR / name).read_text() != text
    ]
    assert stale == [], "run `python -m schemas.export` and commit docs/schemas/"
