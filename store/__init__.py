"""Where results rest: the results store (SQLite by default, PostgreSQL in production)."""

from store.errors import (
    BatchNotFound,
    DuplicateIdempotencyKey,
    StoreError,
    StoreUnavailable,
    TooManyUnfinished,
)
from store.records import (
    FINISHED_STATUSES,
    UNFINISHED_STATUSES,
    ApiKeyRecord,
    BatchRecord,
    BatchStatus,
    ChunkCounts,
    NewBatch,
    counts_from_chunks,
)
from store.results_store import ResultsStore

__all__ = [
    "FINISHED_STATUSES",
    "UNFINISHED_STATUSES",
    "ApiKeyRecord",
    "BatchNotFound",
    "BatchRecord",
    "BatchStatus",
    "ChunkCounts",
    "DuplicateIdempotencyKey",
    "NewBatch",
    "ResultsStore",
    "StoreError",
    "StoreUnavailable",
    "TooManyUnfinished",
    "counts_from_chunks",
]
