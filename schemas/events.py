"""Kafka payloads: the contract between the API, the agents and producers outside this repo.

Every payload carries ``schema_version`` so that a consumer can tell a shape it does not know
from a malformed message. JSON on the wire (see :mod:`schemas.jsonio`: numbers with a fraction
are exact decimals). ``python -m schemas.export`` writes their JSON Schemas to docs/schemas/.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas import jsonio
from schemas.statuses import BatchStatus

SCHEMA_VERSION = 1
# Bounds of every integer a chunk carries. A message outside them is refused before it touches a
# batch (an index of 2**63 once stalled a worker on a store column it could not fit). The API
# sends at most 10,000 items a batch; event-driven producers may send larger batches.
MAX_BATCH_ITEMS = 10_000_000
MAX_CHUNK_ITEMS = 10_000
MAX_CHUNKS = 100_000
BatchId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
OnInvalid = Literal["reject", "skip"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1

    def to_bytes(self) -> bytes:
        # Python mode keeps Decimal items exact; jsonio writes them with their scale.
        return jsonio.dumps(self.model_dump(mode="python", exclude_none=True))


EventT = TypeVar("EventT", bound=Event)


def decode(model: type[EventT], payload: bytes) -> EventT:
    """Parses one message; raises jsonio.JSONDecodeError or pydantic.ValidationError."""
    return model.model_validate(jsonio.loads(payload))


class ChunkEvent(Event):
    """One chunk of a batch on the requests topic: what a worker transforms.

    Chunk ``i`` of a batch cut at ``batch_size`` holds the rows ``i * batch_size`` onwards: every
    chunk but the last holds ``batch_size`` items. Workers refuse a chunk that disagrees with its
    batch (see streams.admission); chunks the API publishes carry an HMAC in the
    ``batchline-signature`` header (see streams.signing).
    """

    batch_id: BatchId
    chunk_index: int = Field(ge=0, lt=MAX_CHUNKS)
    chunk_count: int = Field(ge=1, le=MAX_CHUNKS)
    first_row: int = Field(
        ge=0, lt=MAX_BATCH_ITEMS, description="Row of the chunk's first item in the whole batch."
    )
    total: int = Field(ge=0, le=MAX_BATCH_ITEMS, description="Items in the whole batch.")
    pipeline: str = Field(
        "default", max_length=200, description="Pipeline reference: name or name@version."
    )
    on_invalid: OnInvalid = "reject"
    items: list[Any] = Field(max_length=MAX_CHUNK_ITEMS)
    duplicate_rows: list[Annotated[int, Field(ge=0, lt=MAX_BATCH_ITEMS)]] | None = Field(
        None,
        max_length=MAX_CHUNK_ITEMS,
        description="Rows a batch-wide dedupe filter drops; absent = dedupe within the chunk.",
    )

    def to_bytes(self) -> bytes:
        # The fields go to the encoder as they are: model_dump would first copy every item, which
        # cost as much as the encoding itself on a chunk of 500 seed rows (the API cuts every
        # batch into these). The bytes are the same (tests/unit/schemas/test_events.py).
        fields = ((name, getattr(self, name)) for name in type(self).model_fields)
        return jsonio.dumps({name: value for name, value in fields if value is not None})


class ResultChunkEvent(Event):
    """One transformed chunk on the results topic. After a worker crash a chunk may appear
    twice: consumers dedupe by (batch_id, chunk_index)."""

    batch_id: BatchId
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(ge=1)
    first_row: int = Field(ge=0)
    results: list[dict[str, Any]]
    errors: list[dict[str, Any]] = Field(default_factory=list)


class ChunkCounts(BaseModel):
    """What one transformed chunk adds to its batch's counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_index: int = Field(ge=0, lt=MAX_CHUNKS)
    processed: int = Field(0, ge=0, le=MAX_CHUNK_ITEMS)
    filtered: int = Field(
        0, ge=0, le=MAX_CHUNK_ITEMS, description="Dropped by filters, plus invalid records dropped."
    )
    invalid: int = Field(0, ge=0, le=MAX_CHUNK_ITEMS)


class ChunksDoneEvent(Event):
    """A worker transformed some chunks of one batch (one message per batch per group of
    chunks); keyed by batch ID on the progress topic."""

    kind: Literal["chunks_done"] = "chunks_done"
    batch_id: BatchId
    chunk_count: int = Field(ge=1, le=MAX_CHUNKS)
    total: int = Field(ge=0, le=MAX_BATCH_ITEMS)
    on_invalid: OnInvalid = "reject"
    chunks: list[ChunkCounts] = Field(min_length=1, max_length=MAX_CHUNKS)
    at: datetime


class ChunkFailedEvent(Event):
    """A chunk could not be processed (it went to the dead-letter topic); fails its batch."""

    kind: Literal["chunk_failed"] = "chunk_failed"
    batch_id: BatchId
    chunk_index: int | None = Field(None, ge=0, lt=MAX_CHUNKS)
    reason: str
    at: datetime


class CancelCommand(Event):
    """Asks the workers to stop a batch; keyed by batch ID on the control topic."""

    kind: Literal["cancel"] = "cancel"
    batch_id: BatchId
    requested_at: datetime


class BatchStatusEvent(Event):
    """The latest state of a batch; keyed by batch ID on the compacted status topic: ``queued``
    when the API accepted it (written by the API before the first chunk), ``processing`` with
    its counts at most once a second while it runs, then its final state (written by the worker
    that holds the batch's progress partition)."""

    batch_id: BatchId
    status: BatchStatus
    total: int = Field(ge=0)
    processed: int = Field(ge=0)
    filtered: int = Field(ge=0)
    invalid: int = Field(0, ge=0)
    chunks_done: int = Field(ge=0)
    chunk_count: int = Field(ge=0)
    reason: str | None = None
    at: datetime


class RecordError(BaseModel):
    """Why one field of a record is invalid; ``reason`` is a fixed text, never the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row: int
    field: str
    reason: str


class DeadLetterEvent(Event):
    """A message that could not be processed. It never carries the raw content: the source
    topic still has it at ``source_topic[source_partition]@source_offset``. ``code`` is one of
    streams.admission.DeadLetterCode (stable, for alerting and tooling); ``errors`` lists a
    stream record's invalid fields (``row`` is its offset)."""

    source_topic: str
    source_partition: int
    source_offset: int
    batch_id: str | None = None
    chunk_index: int | None = None
    code: str
    error_type: str
    error: str
    errors: list[RecordError] | None = None
    at: datetime


EVENT_MODELS: tuple[type[Event], ...] = (
    ChunkEvent,
    ResultChunkEvent,
    ChunksDoneEvent,
    ChunkFailedEvent,
    CancelCommand,
    BatchStatusEvent,
    DeadLetterEvent,
)
