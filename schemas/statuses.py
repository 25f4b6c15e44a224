"""The states of a batch, named once: the enum, and which of them are final. Pydantic models
use the enum itself, so /openapi.json publishes it as one ``BatchStatus`` component."""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINISHED: frozenset[BatchStatus] = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.FAILED}
)
UNFINISHED: frozenset[BatchStatus] = frozenset(BatchStatus) - FINISHED
