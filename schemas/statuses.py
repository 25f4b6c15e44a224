"""The states of a batch, named once: the enum, which of them are final, and the same names as
the Literal types that pydantic models and OpenAPI publish."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


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

# For pydantic fields: a Literal publishes as a plain enum of strings in /openapi.json (the
# response model is also called BatchStatus). Checked against the enum below, at import.
StatusName = Literal["queued", "processing", "completed", "cancelled", "failed"]
FinalStatusName = Literal["completed", "cancelled", "failed"]

if set(get_args(StatusName)) != set(BatchStatus) or set(get_args(FinalStatusName)) != FINISHED:
    raise RuntimeError("schemas.statuses: the Literal names disagree with BatchStatus")
