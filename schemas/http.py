"""HTTP bodies of the API, with the seed document's examples."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from schemas.statuses import BatchStatus

MAX_ITEMS = 10_000
MAX_METADATA_PAIRS = 16
# Every JSON number in a request: at most this many digits, and a decimal exponent (of its
# leading digit: 1e100 and 0.000123 = 1.23e-4) within plus or minus this. Far beyond any amount
# or measurement, and small enough that no transform or echo of one costs more than a moment.
MAX_NUMBER_DIGITS = 100
MAX_NUMBER_EXPONENT = 100
SEED_ITEM: dict[str, JsonValue] = {
    "ts": "2024-01-01T00:00:00Z",
    "amt": "100.50",
    "email": "user@example.com",
    "phone": "555-0123",
}
SEED_RESULT: dict[str, JsonValue] = {
    "timestamp": "2024-01-01T00:00:00Z",
    "amount": 100.50,
    "email": "u***r@example.com",
    "phone": "***-0123",
}
# How results carry amounts: exact JSON numbers (100.50, scale kept), or their strings ("100.50")
# for clients whose JSON parser would turn a number into a float.
DecimalFormat = Literal["number", "string"]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    kafka: Literal["ok", "unreachable"]
    store: Literal["ok", "unreachable"]


class BatchCreate(BaseModel):
    """A batch to transform."""

    # strict: "10" or true is not a batch_size, nor "true" a parallel flag.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"data": [SEED_ITEM], "batch_size": 100, "parallel": True}]
        },
    )

    data: list[Any] = Field(description="Array of data items to process (at most 10,000).")
    batch_size: int = Field(100, ge=1, le=MAX_ITEMS, description="Items per chunk message.")
    parallel: bool = Field(True, description="Spread the chunks over workers.")
    pipeline: str = Field(
        "default", min_length=1, max_length=200, description="Pipeline: name or name@version."
    )
    on_invalid: Literal["reject", "skip"] | None = Field(
        None, description="reject: 400 on the first invalid item; skip: drop and report them."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Up to 16 string pairs, returned with the status."
    )

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} metadata pairs")
        if any(len(k) > 64 or len(v) > 512 for k, v in value.items()):
            raise ValueError("metadata keys are at most 64 characters, values at most 512")
        return value


class BatchResult(BaseModel):
    """A batch that finished while the request waited."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "success",
                    "processed": 1,
                    "filtered": 0,
                    "duration": 0.5,
                    "results": [SEED_RESULT],
                    "batch_id": "batch_123",
                }
            ]
        }
    )

    status: Literal["success"] = "success"
    processed: int
    filtered: int
    duration: float
    results: list[dict[str, Any]]
    batch_id: str


class BatchAccepted(BaseModel):
    """A batch accepted for processing; poll the URL in the Location header."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"batch_id": "batch_123", "status": "queued"}]}
    )

    batch_id: str
    status: BatchStatus


class BatchStatusBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "batch_123",
                    "status": "completed",
                    "progress": 100,
                    "processed": 1000,
                    "filtered": 50,
                    "duration": 5.2,
                    "started_at": "2024-01-01T00:00:00Z",
                    "completed_at": "2024-01-01T00:00:05Z",
                    "total": 1050,
                    "metadata": {},
                }
            ]
        }
    )

    batch_id: str
    status: BatchStatus
    progress: int = Field(ge=0, le=100)
    processed: int
    filtered: int
    duration: float | None
    started_at: datetime | None
    completed_at: datetime | None
    total: int
    invalid: int = 0
    pipeline: str = "default"
    created_at: datetime | None = None
    reason: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    replay_of: str | None = Field(
        None, description="For a replay (POST .../replay): the ID of the batch it re-ran."
    )


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str | None = Field(
        None,
        max_length=200,
        description="Pipeline to run the input through (name or name@version); "
        "absent: the original batch's.",
    )


class BatchList(BaseModel):
    batches: list[BatchStatusBody]
    offset: int
    limit: int
    total: int


class ResultsPage(BaseModel):
    batch_id: str
    offset: int
    limit: int
    total: int
    partial: bool = Field(
        description="True unless the batch completed: it still runs, or was cancelled or failed "
        "(a cancelled batch's results are exactly the rows its counts say were processed)"
    )
    results: list[dict[str, Any]]


class RowErrorBody(BaseModel):
    row: int
    field: str
    reason: str


class ErrorsPage(BaseModel):
    batch_id: str
    offset: int
    limit: int
    total: int
    errors: list[RowErrorBody]


class CancelResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "cancelled", "message": "Batch processing job cancelled successfully"}
            ]
        }
    )

    status: Literal["cancelled", "cancelling"]
    message: str


class ErrorCode(StrEnum):
    """The stable codes in ErrorBody.error: one for each distinct error."""

    BAD_REQUEST = "bad_request"  # invalid parameters, JSON or headers
    VALIDATION_ERROR = "validation_error"  # an item the pipeline refuses (details: row, field)
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    CONFLICT = "conflict"  # a 409 from the framework itself; the API's own 409s are below
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    BATCH_FINISHED = "batch_finished"  # cancel of a batch that already ended
    BATCH_NOT_FAILED = "batch_not_failed"  # retry of a batch that did not fail
    BATCH_CHANGED = "batch_changed"  # a retry raced another change of the batch
    NOT_RETRYABLE = "not_retryable"
    NOT_REPLAYABLE = "not_replayable"
    INPUT_EXPIRED = "input_expired"  # 410: the batch's input aged out of Kafka
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNKNOWN_PIPELINE = "unknown_pipeline"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    TOO_MANY_CONCURRENT_BATCHES = "too_many_concurrent_batches"
    PROCESSING_ERROR = "processing_error"  # the batch failed (a synchronous submit's 500)
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"


class ErrorBody(BaseModel):
    """Every error the API returns has this shape; ``error`` is a stable code."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "validation_error",
                    "message": "Invalid data format in batch",
                    "details": {"row": 5, "field": "amount", "reason": "Invalid number format"},
                }
            ]
        }
    )

    error: ErrorCode
    message: str
    details: dict[str, Any] | None = None
