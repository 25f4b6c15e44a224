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
    ApiKeyRecord,
    BatchEnding,
    BatchRecord,
    EncodedChunk,
    NewBatch,
    StoredChunkCounts,
    StoredGroup,
    stored_chunk_counts,
)
from store.results_store import ResultsStore

__all__ = [
    "ApiKeyRecord",
    "BatchEnding",
    "BatchNotFound",
    "BatchRecord",
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
