"""Replaying a batch: its input is read back from the requests topic, where the API published it,
and published again as a new batch. The client never sends the data again.

What is read back is verified as a worker verifies it (the API's signature, the batch ID and the
chunk index each location should hold) before any of it goes anywhere. Input that has aged out
of the topic (``retention.ms`` of ``<prefix>.requests``) answers 410 at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.errors import ApiError
from api.limits import MAX_UNFINISHED_BATCHES
from api.state import ApiState
from api.submission import (
    RETRY_AFTER_S,
    accepted,
    new_batch_id,
    publish,
    resolve_pipeline,
    too_many_unfinished,
)
from schemas import jsonio
from schemas.events import ChunkEvent, decode
from schemas.http import ErrorCode
from store import ApiKeyRecord, BatchRecord, NewBatch, TooManyUnfinished
from streams.dead_letters import SourceMessage
from streams.kafka_security import KafkaSecurity
from streams.located import Location, read_located
from streams.signing import has_valid_signature

log = logging.getLogger(__name__)


class InputUnverifiable(Exception):
    """What sits where the batch's input was published is not that input."""


async def replay(
    state: ApiState, caller: ApiKeyRecord, original: BatchRecord, pipeline_ref: str | None
) -> JSONResponse:
    pipeline = resolve_pipeline(state, pipeline_ref or original.pipeline_ref)
    locations = await state.store.chunk_locations(original.batch_id, range(original.chunk_count))
    if len(locations) != original.chunk_count:
        raise ApiError(
            409,
            ErrorCode.NOT_REPLAYABLE,
            "Only a batch submitted over the API can be replayed: the place of its input on "
            "the requests topic is recorded as it is published",
            {"batch_id": original.batch_id},
        )
    items = await _read_input(state, original, locations)
    new = NewBatch(
        batch_id=new_batch_id(),
        owner_key_id=caller.key_id,
        pipeline_ref=pipeline.ref,
        on_invalid=original.on_invalid,
        total=original.total,
        chunk_count=original.chunk_count,
        batch_size=original.batch_size,
        parallel=original.parallel,
        created_at=datetime.now(UTC),
        metadata=original.metadata,
    )
    try:
        record = await state.store.insert_batch(new, max_unfinished=MAX_UNFINISHED_BATCHES)
    except TooManyUnfinished:
        raise too_many_unfinished() from None
    await state.store.record_replay(record.batch_id, original.batch_id)
    placed = await publish(state, record, items, pipeline, original.on_invalid)
    await state.store.record_chunk_locations(record.batch_id, placed)
    state.metrics.processed.labels(stage="accepted").inc(record.total)
    log.info(
        "batch replayed",
        extra={"batch_id": record.batch_id, "replay_of": original.batch_id, "items": record.total},
    )
    return accepted(record)


async def _read_input(
    state: ApiState, original: BatchRecord, locations: dict[int, Location]
) -> list[Any]:
    secret = state.settings.chunk_secret.get_secret_value().encode()
    messages = await read_published(state, original, locations)
    try:
        return verified_items(secret, original, messages)
    except InputUnverifiable:
        raise _unverifiable(original) from None


async def read_published(
    state: ApiState, batch: BatchRecord, locations: dict[int, Location]
) -> dict[int, SourceMessage]:
    """The messages the API published at ``locations``, by chunk index; API errors for input
    that aged out or a Kafka that does not answer."""
    settings = state.settings
    try:
        found = await read_located(
            settings.kafka_bootstrap,
            KafkaSecurity.from_settings(settings),
            state.topics.requests,
            locations,
        )
    except (KafkaError, OSError, TimeoutError):
        raise ApiError(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            "Kafka is unreachable; retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    if len(found) != len(locations):
        raise ApiError(
            410,
            ErrorCode.INPUT_EXPIRED,
            "The batch's input is older than the requests topic keeps, so it cannot be "
            "run again; submit the data again",
            {"batch_id": batch.batch_id},
        )
    return found


def _unverifiable(batch: BatchRecord) -> ApiError:
    log.warning("published input failed verification", extra={"batch_id": batch.batch_id})
    return ApiError(
        409,
        ErrorCode.NOT_REPLAYABLE,
        "The batch's input on the requests topic could not be verified; submit it again",
        {"batch_id": batch.batch_id},
    )


def verified_chunk(
    secret: bytes, batch: BatchRecord, index: int, message: SourceMessage
) -> ChunkEvent:
    """Chunk ``index`` of ``batch``, from a message the API signed for exactly that chunk."""
    if not has_valid_signature(secret, message.key, message.value, message.headers):
        raise InputUnverifiable
    try:
        chunk = decode(ChunkEvent, message.value)
    except (jsonio.JSONDecodeError, ValidationError):
        raise InputUnverifiable from None
    expected = (batch.batch_id, index, index * batch.batch_size)
    if (chunk.batch_id, chunk.chunk_index, chunk.first_row) != expected:
        raise InputUnverifiable
    return chunk


def verified_items(
    secret: bytes, original: BatchRecord, messages: dict[int, SourceMessage]
) -> list[Any]:
    """The batch's items in row order, from chunk messages the API signed for this batch."""
    items: list[Any] = []
    for index in range(original.chunk_count):
        items.extend(verified_chunk(secret, original, index, messages[index]).items)
    if len(items) != original.total:
        raise InputUnverifiable
    return items
