"""The batch endpoints of the seed document, plus results, errors and the caller's list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api import submission
from api.body import parse_json, read_body, require_json, validate_model
from api.csv_results import CSV, csv_lines
from api.deps import Caller, State
from api.errors import ApiError
from api.replay import replay
from api.retry import retry
from api.state import ApiState
from api.views import owned_batch, status_from_record
from schemas import jsonio
from schemas.events import CancelCommand
from schemas.http import (
    BatchAccepted,
    BatchCreate,
    BatchList,
    BatchResult,
    BatchStatusBody,
    CancelResult,
    DecimalFormat,
    ErrorBody,
    ErrorCode,
    ErrorsPage,
    ReplayRequest,
    ResultsPage,
)
from schemas.statuses import UNFINISHED, BatchStatus
from streams.errors import KafkaUnavailable

router = APIRouter(prefix="/api/v1/transform", tags=["batches"])
MAX_PAGE = 10_000
DEFAULT_PAGE = 1000
# Both stores bind an offset as a 64-bit integer; a larger one would fail there as a 500.
MAX_OFFSET = 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many to skip.")]
Decimals = Annotated[
    DecimalFormat,
    Query(
        description="number (default): amounts as exact JSON numbers, scale kept (100.50); "
        "parse them with a decimal-preserving parser (Python: json.loads(text, "
        'parse_float=decimal.Decimal)). string: amounts as strings ("100.50").'
    ),
]
CANCEL_WAIT_S = 10.0
NDJSON = "application/x-ndjson"
# On an NDJSON stream, whose lines are results only, `partial` travels as this header.
PARTIAL_HEADER = "Batchline-Partial"

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Invalid request parameters",
        401: "Missing or unknown API key",
        404: "Batch job not found",
        429: "Rate limit exceeded",
        503: "Kafka or the results store unavailable; retry later",
        500: "Processing error",
    }.items()
}


def _batch_create_body() -> dict[str, Any]:
    # The body is read by hand (exact decimals), so FastAPI cannot derive it: declare it here.
    schema = BatchCreate.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _links_from_batch_id() -> dict[str, Any]:
    """OpenAPI links: the batch_id a submit returns feeds the batch's other operations."""
    parameters = {"batch_id": "$response.body#/batch_id"}
    return {
        operation: {"operationId": operation, "parameters": parameters}
        for operation in ("read_batch", "read_results", "read_errors", "cancel_batch")
    }


@router.post(
    "/batch",
    operation_id="create_batch",
    response_model=BatchResult,
    responses={
        200: {"links": _links_from_batch_id()},
        202: {
            "model": BatchAccepted,
            "description": "Accepted; poll the Location URL",
            "links": _links_from_batch_id(),
        },
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body"},
        413: {"model": ErrorBody, "description": "Body over BATCHLINE_MAX_BODY_BYTES"},
        415: {"model": ErrorBody, "description": "Body not declared as JSON"},
        503: {"model": ErrorBody, "description": "Kafka unavailable; retry later"},
        **ERRORS,
    },
    openapi_extra=_batch_create_body(),
)
async def create_batch(
    request: Request,
    state: State,
    caller: Caller,
    prefer: Annotated[str | None, Header(description="respond-async: answer 202 at once")] = None,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
    decimals: Decimals = "number",
) -> Response:
    """Process a batch of data through the transformation pipeline."""
    require_json(request)
    raw = await read_body(request, state.settings.max_body_bytes)
    document = parse_json(raw)
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        try:
            submission.check_size(len(document["data"]))
        except ApiError:
            state.metrics.rate_limited.labels(limit="batch_size").inc()
            raise
    body = validate_model(BatchCreate, document)
    respond_async = prefer is not None and "respond-async" in prefer.lower()
    request_id = str(getattr(request.state, "request_id", ""))
    return await submission.submit(
        state, caller, body, raw, idempotency_key, respond_async, request_id, decimals
    )


@router.get(
    "/batch/{batch_id}", operation_id="read_batch", response_model=BatchStatusBody, responses=ERRORS
)
async def read_batch(batch_id: str, state: State, caller: Caller) -> BatchStatusBody:
    """Get the status of a batch processing job."""
    batch = await owned_batch(state, caller, batch_id)
    return status_from_record(batch, await state.store.replay_of(batch_id))


@router.get(
    "/batch/{batch_id}/results",
    operation_id="read_results",
    response_model=ResultsPage,
    responses={
        200: {
            "content": {NDJSON: {}, CSV: {}},
            "headers": {
                PARTIAL_HEADER: {
                    "description": "On NDJSON and CSV: true unless the batch completed",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                }
            },
        },
        **ERRORS,
    },
)
async def read_results(
    batch_id: str,
    request: Request,
    state: State,
    caller: Caller,
    offset: Offset = 0,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Default 1000; NDJSON: all.")
    ] = None,
    decimals: Decimals = "number",
) -> Response:
    """Results in item order: a page of JSON; NDJSON lines with Accept: application/x-ndjson;
    CSV (a header of every field, then one line per result) with Accept: text/csv."""
    batch = await owned_batch(state, caller, batch_id)
    partial = batch.status != BatchStatus.COMPLETED
    accept = request.headers.get("accept", "")
    partial_header = {PARTIAL_HEADER: "true" if partial else "false"}
    if NDJSON in accept:
        return StreamingResponse(
            _ndjson(state, batch.batch_id, offset, limit, decimals),
            media_type=NDJSON,
            headers=partial_header,
        )
    if CSV in accept:
        return StreamingResponse(
            csv_lines(lambda: state.store.iter_results(batch.batch_id, offset, limit)),
            media_type=f"{CSV}; charset=utf-8",
            headers=partial_header,
        )
    limit = limit or DEFAULT_PAGE
    total = await state.store.count_results(batch.batch_id)
    results = [item async for item in state.store.iter_results(batch.batch_id, offset, limit)]
    page = {
        "batch_id": batch_id,
        "offset": offset,
        "limit": limit,
        "total": total,
        "partial": partial,
    }
    results = jsonio.decimals_as(decimals, results)
    return Response(jsonio.dumps({**page, "results": results}), media_type="application/json")


async def _ndjson(
    state: ApiState, batch_id: str, offset: int, limit: int | None, decimals: DecimalFormat
) -> AsyncIterator[bytes]:
    # One line per result, read from the store a few chunks at a time: never a whole batch.
    async for item in state.store.iter_results(batch_id, offset, limit):
        yield jsonio.dumps(jsonio.decimals_as(decimals, item)) + b"\n"


@router.get(
    "/batch/{batch_id}/errors",
    operation_id="read_errors",
    response_model=ErrorsPage,
    responses=ERRORS,
)
async def read_errors(
    batch_id: str,
    state: State,
    caller: Caller,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> ErrorsPage:
    """The records an on_invalid=skip batch dropped, as {row, field, reason}, in row order."""
    batch = await owned_batch(state, caller, batch_id)
    errors, total = await state.store.list_errors(batch.batch_id, offset, limit)
    return ErrorsPage.model_validate(
        {"batch_id": batch_id, "offset": offset, "limit": limit, "total": total, "errors": errors}
    )


@router.post(
    "/batch/{batch_id}/cancel",
    operation_id="cancel_batch",
    response_model=CancelResult,
    responses={
        202: {"model": CancelResult, "description": "Cancel requested, not yet confirmed"},
        409: {"model": ErrorBody, "description": "The batch has already finished"},
        **ERRORS,
    },
)
async def cancel_batch(batch_id: str, state: State, caller: Caller) -> Response:
    """Cancel a running batch processing job."""
    batch = await owned_batch(state, caller, batch_id)
    if batch.status not in UNFINISHED:
        raise _already_finished(batch_id, batch.status)
    future = state.listener.register(batch_id)
    try:
        command = CancelCommand(batch_id=batch_id, requested_at=datetime.now(UTC))
        await state.publisher.send_all(
            state.topics.control, [(batch_id.encode(), command.to_bytes(), [])]
        )
        event = await asyncio.wait_for(asyncio.shield(future), CANCEL_WAIT_S)
    except TimeoutError:
        body = CancelResult(status="cancelling", message="Cancel requested; poll the batch status")
        return JSONResponse(body.model_dump(), status_code=202)
    except KafkaUnavailable as exc:
        raise ApiError(
            503, ErrorCode.SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}
        ) from None
    finally:
        state.listener.unregister(batch_id, future)
    if event.status != BatchStatus.CANCELLED:
        raise _already_finished(batch_id, event.status)
    body = CancelResult(status="cancelled", message="Batch processing job cancelled successfully")
    return JSONResponse(body.model_dump())


@router.post(
    "/batch/{batch_id}/replay",
    operation_id="replay_batch",
    response_model=BatchAccepted,
    status_code=202,
    responses={
        409: {"model": ErrorBody, "description": "The batch cannot be replayed"},
        410: {"model": ErrorBody, "description": "The batch's input has aged out of Kafka"},
        **ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ReplayRequest.model_json_schema()}},
        }
    },
)
async def replay_batch(batch_id: str, request: Request, state: State, caller: Caller) -> Response:
    """Run a past batch's input again, as a new batch, optionally through another pipeline."""
    original = await owned_batch(state, caller, batch_id)
    raw = await read_body(request, state.settings.max_body_bytes)
    pipeline = None
    if raw.strip():
        require_json(request)
        pipeline = validate_model(ReplayRequest, parse_json(raw)).pipeline
    return await replay(state, caller, original, pipeline)


@router.post(
    "/batch/{batch_id}/retry",
    operation_id="retry_batch",
    response_model=BatchAccepted,
    status_code=202,
    responses={
        409: {"model": ErrorBody, "description": "Not failed, or failed on its data"},
        410: {"model": ErrorBody, "description": "The batch's input has aged out of Kafka"},
        **ERRORS,
    },
)
async def retry_batch(batch_id: str, state: State, caller: Caller) -> Response:
    """Run the dead-lettered chunks of a batch that failed for a reason outside its data again,
    under the same batch ID."""
    return await retry(state, await owned_batch(state, caller, batch_id))


def _already_finished(batch_id: str, status: str) -> ApiError:
    return ApiError(
        409,
        ErrorCode.BATCH_FINISHED,
        f"Batch is already {status}; only queued or processing batches can be cancelled",
        {"batch_id": batch_id, "status": status},
    )


@router.get("/batches", operation_id="list_batches", response_model=BatchList, responses=ERRORS)
async def list_batches(
    state: State,
    caller: Caller,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    status: Annotated[BatchStatus | None, Query(description="Only batches in this status.")] = None,
) -> BatchList:
    """The caller's batches, newest first."""
    records, total = await state.store.list_batches(caller.key_id, offset, limit, status)
    batches = [status_from_record(record) for record in records]
    return BatchList(batches=batches, offset=offset, limit=limit, total=total)
