"""Where results rest: the results store (SQLite by default, PostgreSQL in production)."""

from store.chunks import encode_chunk
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
    BatchEnding,
    BatchRecord,
    BatchStatus,
    EncodedChunk,
    NewBatch,
    StoredChunkCounts,
    StoredGroup,
    stored_chunk_counts,
)
from store.results_store import ResultsStore

__all__ = [
    "FINISHED_STATUSES",
    "UNFINISHED_STATUSES",
    "ApiKeyRecord",
    "BatchEnding",
    "BatchNotFound",
    "BatchRecord",
    "BatchStatus",
    "DuplicateIdempotencyKey",
    "EncodedChunk",
    "NewBatch",
    "ResultsStore",
    "StoreError",
    "StoreUnavailable",
    "StoredChunkCounts",
    "StoredGroup",
    "TooManyUnfinished",
    "encode_chunk",
    "stored_chunk_counts",
]
