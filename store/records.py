"""Plain immutable records the results store takes and returns (no SQLAlchemy types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.statuses import FINISHED


@dataclass(frozen=True, slots=True)
class NewBatch:
    """What the API knows about a batch when it accepts it."""

    batch_id: str
    owner_key_id: str | None
    pipeline_ref: str
    on_invalid: str
    total: int
    chunk_count: int
    batch_size: int
    parallel: bool
    created_at: datetime
    idempotency_key: str | None = None
    request_digest: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One row of ``batches``; every datetime is timezone-aware UTC."""

    batch_id: str
    owner_key_id: str | None
    status: str
    pipeline_ref: str
    on_invalid: str
    total: int
    chunk_count: int
    batch_size: int
    parallel: bool
    processed: int
    filtered: int
    invalid: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration: float | None
    reason: str | None
    idempotency_key: str | None
    request_digest: str | None
    metadata: dict[str, str]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One row of ``api_keys``; only the sha256 of the secret is ever stored."""

    key_id: str
    name: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """A transformed chunk as the store keeps it: results and errors already JSON-encoded, so
    the same bytes go to the store and to the results topic."""

    batch_id: str
    chunk_index: int
    first_row: int
    result_count: int
    results_json: bytes
    error_count: int
    errors_json: bytes


@dataclass(frozen=True, slots=True)
class BatchEnding:
    """How a batch ends: its final status, its counts ``(processed, filtered, invalid)``, and
    the reason of a failure."""

    status: str
    counts: tuple[int, int, int]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """What ``ResultsStore.put_chunk_group`` did: the batches it found already finished (their
    chunks were not stored), and the batches it ended, as stored."""

    finished: set[str]
    ended: dict[str, BatchRecord]


@dataclass(frozen=True, slots=True)
class StoredChunkCounts:
    """What one stored chunk adds to its batch's counts."""

    chunk_index: int
    processed: int
    filtered: int
    invalid: int


def stored_chunk_counts(
    batch: BatchRecord, summaries: list[tuple[int, int, int]]
) -> list[StoredChunkCounts]:
    """Per-chunk counts from ``ResultsStore.chunk_summaries`` rows ``(first_row, results,
    errors)``: chunk ``i`` holds ``batch_size`` items from row ``first_row`` on (the last one
    fewer); the items not in its results were filtered (invalid ones included)."""
    counts = []
    for first_row, results, errors in summaries:
        chunk_items = min(batch.batch_size, batch.total - first_row)
        counts.append(
            StoredChunkCounts(
                chunk_index=first_row // max(batch.batch_size, 1),
                processed=results,
                filtered=max(chunk_items - results, 0),
                invalid=errors,
            )
        )
    return counts
