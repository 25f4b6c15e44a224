"""Which chunks a worker may act on: every message on the requests topic is a stranger's input.

A chunk is processed only if it agrees with its batch. The rules, each with the dead-letter code
it earns (pure functions: no Kafka, no store):

- the value decodes and fits the schema's bounds (``undecodable``, ``invalid_chunk``);
- a chunk of a batch the API registered carries the API's signature (``bad_signature``); a
  signed chunk names a batch that is registered (``unknown_batch``);
- a chunk of a batch named ``<namespace>:<id>`` carries the signature of the active API key whose
  namespace that is (``unknown_owner``, ``bad_signature``; see streams.owners);
- ``total`` and ``chunk_count`` are those registered for the batch (``batch_mismatch``);
- ``chunk_index`` is below ``chunk_count`` (``index_out_of_range``);
- ``first_row`` is ``chunk_index * batch_size`` (``misplaced_rows``);
- ``items`` holds ``batch_size`` items, or the rest of the batch in its last chunk
  (``wrong_item_count``), and its dedupe rows lie inside the chunk (``invalid_chunk``).

An event-driven producer's batch is registered by its first chunk that reaches a worker; that
chunk must be consistent with itself (same rules, against the shape it implies). A chunk that
fails admission is dead-lettered and touches no batch's rows, counts or status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.events import ChunkEvent
from store import BatchRecord, NewBatch
from streams.owners import namespace_of


class DeadLetterCode(StrEnum):
    UNDECODABLE = "undecodable"
    INVALID_CHUNK = "invalid_chunk"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_BATCH = "unknown_batch"
    UNKNOWN_OWNER = "unknown_owner"
    BATCH_MISMATCH = "batch_mismatch"
    INDEX_OUT_OF_RANGE = "index_out_of_range"
    MISPLACED_ROWS = "misplaced_rows"
    WRONG_ITEM_COUNT = "wrong_item_count"
    WRONG_INGEST = "wrong_ingest"
    # Records of the record stream (streams.record_stream).
    INVALID_RECORD = "invalid_record"
    # Progress and control messages.
    INVALID_EVENT = "invalid_event"
    KEY_MISMATCH = "key_mismatch"
    # Admitted, then failed: these fail the batch the chunk proved it belongs to.
    UNKNOWN_PIPELINE = "unknown_pipeline"
    PIPELINE_FAILED = "pipeline_failed"
    STORE_REFUSED = "store_refused"
    GAVE_UP = "gave_up"


# The one text of each code. Dead letters and batch reasons carry these, the code and numbers
# only: never a string a producer chose (a field or pipeline name, a value), which could be
# personal data or a lie told to whoever reads the dead-letter topic.
DEAD_LETTER_MESSAGES: dict[DeadLetterCode, str] = {
    DeadLetterCode.UNDECODABLE: "The message is not one well-formed JSON document",
    DeadLetterCode.INVALID_CHUNK: "The message is not a valid chunk (see the ChunkEvent schema)",
    DeadLetterCode.BAD_SIGNATURE: "The chunk does not carry the signature of its batch's owner "
    "(the API's, or the producer key's for a namespaced batch ID)",
    DeadLetterCode.UNKNOWN_BATCH: "The message names a batch that is not registered (a chunk "
    "signed by the API must find its batch registered)",
    DeadLetterCode.UNKNOWN_OWNER: "The batch ID's namespace is not that of an active API key",
    DeadLetterCode.BATCH_MISMATCH: "total or chunk_count differ from the batch's",
    DeadLetterCode.INDEX_OUT_OF_RANGE: "chunk_index is not below chunk_count",
    DeadLetterCode.MISPLACED_ROWS: "first_row is not chunk_index * batch_size",
    DeadLetterCode.WRONG_ITEM_COUNT: "items does not hold the chunk's share of the batch",
    DeadLetterCode.WRONG_INGEST: "A chunk on a producer's ingest topic names a batch outside "
    "that producer's namespace",
    DeadLetterCode.INVALID_RECORD: "The record is not a JSON object, names its pipeline in an "
    "unusable header, or has invalid fields (see errors)",
    DeadLetterCode.INVALID_EVENT: "The message is not a valid progress or control event (see "
    "the ChunksDoneEvent, ChunkFailedEvent and CancelCommand schemas)",
    DeadLetterCode.KEY_MISMATCH: "The message's key is not the ID of the batch it names",
    DeadLetterCode.UNKNOWN_PIPELINE: "The chunk names a pipeline the workers do not have",
    DeadLetterCode.PIPELINE_FAILED: "The pipeline failed on the chunk",
    DeadLetterCode.STORE_REFUSED: "The results store refused the chunk",
    DeadLetterCode.GAVE_UP: "Kafka or the results store stayed unreachable past every retry",
}


@dataclass(frozen=True, slots=True)
class BatchShape:
    total: int
    chunk_count: int
    batch_size: int


def shape_of(batch: BatchRecord) -> BatchShape:
    return BatchShape(batch.total, batch.chunk_count, batch.batch_size)


def check_chunk(chunk: ChunkEvent, shape: BatchShape) -> DeadLetterCode | None:
    """None if the chunk agrees with its batch's shape, else why not."""
    if (chunk.total, chunk.chunk_count) != (shape.total, shape.chunk_count):
        return DeadLetterCode.BATCH_MISMATCH
    if chunk.chunk_index >= chunk.chunk_count:
        return DeadLetterCode.INDEX_OUT_OF_RANGE
    if chunk.first_row != chunk.chunk_index * shape.batch_size:
        return DeadLetterCode.MISPLACED_ROWS
    expected_items = min(shape.batch_size, shape.total - chunk.first_row)
    if len(chunk.items) != expected_items:
        return DeadLetterCode.WRONG_ITEM_COUNT
    end = chunk.first_row + len(chunk.items)
    if chunk.duplicate_rows and not all(chunk.first_row <= r < end for r in chunk.duplicate_rows):
        return DeadLetterCode.INVALID_CHUNK
    return None


def implied_shape(chunk: ChunkEvent) -> BatchShape | DeadLetterCode:
    """The shape a producer's chunk implies for its batch, or why it implies none."""
    if chunk.chunk_index >= chunk.chunk_count:
        return DeadLetterCode.INDEX_OUT_OF_RANGE
    if chunk.chunk_count == 1:
        batch_size = max(chunk.total, 1)
    elif chunk.chunk_index < chunk.chunk_count - 1:
        batch_size = len(chunk.items)  # every chunk but the last is full
    elif chunk.first_row % chunk.chunk_index:
        return DeadLetterCode.MISPLACED_ROWS
    else:
        batch_size = chunk.first_row // chunk.chunk_index
    if batch_size < 1 or math.ceil(chunk.total / batch_size) != chunk.chunk_count:
        if chunk.total or chunk.chunk_count != 1:
            return DeadLetterCode.BATCH_MISMATCH
    shape = BatchShape(chunk.total, chunk.chunk_count, batch_size)
    return check_chunk(chunk, shape) or shape


def producer_batch(
    chunk: ChunkEvent,
    shape: BatchShape,
    now: datetime,
    owner_key_id: str | None = None,
    pipeline_ref: str | None = None,
) -> NewBatch:
    """The registration of an event-driven producer's batch, from its first admitted chunk:
    owned by the key that signed it, or by nobody, and run with ``pipeline_ref`` (the exact
    version the chunk's pipeline resolved to; default: as the chunk names it)."""
    return NewBatch(
        batch_id=chunk.batch_id,
        owner_key_id=owner_key_id,
        pipeline_ref=pipeline_ref or chunk.pipeline,
        on_invalid=chunk.on_invalid,
        total=shape.total,
        chunk_count=shape.chunk_count,
        batch_size=shape.batch_size,
        parallel=True,
        created_at=now,
    )


def signature_required(batch: BatchRecord) -> bool:
    """Whether a chunk of this batch needs the API's signature: the API registers its batches
    with their owner's key and an ID without a namespace; workers register keyless batches, and
    owned ones under a namespace (whose chunks need the owner's signature instead)."""
    return batch.owner_key_id is not None and namespace_of(batch.batch_id) is None
