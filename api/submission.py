"""Accepting a batch: limits, validation of every item, publishing, and the wait for its end."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import Response
from fastapi.responses import JSONResponse

from api.errors import ApiError
from api.limits import MAX_UNFINISHED_BATCHES
from api.state import ApiState
from schemas import jsonio
from schemas.events import BatchStatusEvent, ChunkFailedEvent
from schemas.http import (
    MAX_ITEMS,
    BatchAccepted,
    BatchCreate,
    BatchResult,
    DecimalFormat,
    ErrorCode,
)
from schemas.statuses import UNFINISHED, BatchStatus
from store import ApiKeyRecord, BatchRecord, DuplicateIdempotencyKey, NewBatch, TooManyUnfinished
from streams.chunking import chunk_count, iter_chunks
from streams.errors import ChunkTooLarge, KafkaUnavailable, TopicCreationFailed
from streams.signing import sign_all
from streams.topics import ensure_configured_topics
from telemetry.metrics import Metrics
from transforms import CompiledPipeline, TransformsError

log = logging.getLogger(__name__)
# API error codes that count as processing errors, by their metric error_type.
ERROR_TYPES = {
    "validation_error": "validation",
    "service_unavailable": "kafka_unavailable",
    "processing_error": "batch_failed",
}
RETRY_AFTER_S = 5
TOPICS_TIMEOUT_S = 10.0
LISTENER_READY_TIMEOUT_S = 5.0


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


def status_url(batch_id: str) -> str:
    return f"/api/v1/transform/batch/{batch_id}"


def check_size(item_count: int) -> None:
    if item_count > MAX_ITEMS:
        raise ApiError(
            400,
            ErrorCode.BATCH_TOO_LARGE,
            f"A batch holds at most {MAX_ITEMS} items; split it into several batches",
            {"max_items": MAX_ITEMS, "items": item_count},
        )


def resolve_pipeline(state: ApiState, ref: str) -> CompiledPipeline:
    try:
        return state.registry.get(ref)
    except TransformsError as exc:
        raise ApiError(400, ErrorCode.UNKNOWN_PIPELINE, str(exc)) from None


def validate_items(pipeline: CompiledPipeline, body: BatchCreate, on_invalid: str) -> None:
    if on_invalid != "reject":
        return
    error = pipeline.first_error(body.data)
    if error is not None:
        raise ApiError(
            400, ErrorCode.VALIDATION_ERROR, "Invalid data format in batch", error.as_dict()
        )


def accepted(batch: BatchRecord, status_code: int = 202) -> JSONResponse:
    body = BatchAccepted(batch_id=batch.batch_id, status=batch.status)
    return JSONResponse(
        body.model_dump(), status_code=status_code, headers={"Location": status_url(batch.batch_id)}
    )


async def submit(
    state: ApiState,
    caller: ApiKeyRecord,
    body: BatchCreate,
    raw_body: bytes,
    idempotency_key: str | None,
    respond_async: bool,
    request_id: str,
    decimals: DecimalFormat = "number",
) -> Response:
    metrics = state.metrics
    started = time.perf_counter()
    in_flight = metrics.memory.labels(kind="in_flight")
    in_flight.inc(len(raw_body))
    try:
        pipeline = resolve_pipeline(state, body.pipeline)
        on_invalid = body.on_invalid or pipeline.on_invalid
        validate_items(pipeline, body, on_invalid)
        digest = hashlib.sha256(raw_body).hexdigest()
        batch = await _admit(state, caller, body, pipeline, on_invalid, idempotency_key, digest)
        if batch.created_now:
            return await _publish_and_respond(
                state,
                batch.record,
                body.data,
                pipeline,
                on_invalid,
                respond_async,
                request_id,
                decimals,
            )
        return await _respond(state, batch.record, respond_async, request_id, decimals=decimals)
    except ApiError as exc:
        _count_refusal(metrics, exc.error)
        raise
    finally:
        in_flight.dec(len(raw_body))
        metrics.duration.labels(scope="request").observe(time.perf_counter() - started)


def _count_refusal(metrics: Metrics, error: str) -> None:
    if error in ERROR_TYPES:
        metrics.errors.labels(error_type=ERROR_TYPES[error]).inc()
    elif error == "too_many_concurrent_batches":
        metrics.rate_limited.labels(limit="unfinished_batches").inc()


class _Admitted:
    __slots__ = ("created_now", "record")

    def __init__(self, record: BatchRecord, created_now: bool) -> None:
        self.record = record
        self.created_now = created_now


async def _admit(
    state: ApiState,
    caller: ApiKeyRecord,
    body: BatchCreate,
    pipeline: CompiledPipeline,
    on_invalid: str,
    idempotency_key: str | None,
    digest: str,
) -> _Admitted:
    new = NewBatch(
        batch_id=new_batch_id(),
        owner_key_id=caller.key_id,
        pipeline_ref=pipeline.ref,
        on_invalid=on_invalid,
        total=len(body.data),
        chunk_count=chunk_count(len(body.data), body.batch_size),
        batch_size=body.batch_size,
        parallel=body.parallel,
        created_at=datetime.now(UTC),
        idempotency_key=idempotency_key,
        request_digest=digest,
        metadata=body.metadata,
    )
    try:
        # Counting and inserting happen in one transaction, serialised per key across every
        # API process, so a key never gets a sixth unfinished batch.
        record = await state.store.insert_batch(new, max_unfinished=MAX_UNFINISHED_BATCHES)
    except DuplicateIdempotencyKey as clash:  # a retry, or another process won the race
        return _Admitted(_same_request(clash.existing, digest), created_now=False)
    except TooManyUnfinished:
        raise too_many_unfinished() from None
    return _Admitted(record, created_now=True)


def too_many_unfinished() -> ApiError:
    return ApiError(
        429,
        ErrorCode.TOO_MANY_CONCURRENT_BATCHES,
        f"At most {MAX_UNFINISHED_BATCHES} unfinished batches per API key; "
        "wait for one to finish or cancel one",
        {"limit": MAX_UNFINISHED_BATCHES},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _publish_and_respond(
    state: ApiState,
    batch: BatchRecord,
    items: list[Any],
    pipeline: CompiledPipeline,
    on_invalid: str,
    respond_async: bool,
    request_id: str,
    decimals: DecimalFormat,
) -> Response:
    # Waiting for the end is set up before publishing, so that however soon the batch ends,
    # its status event finds the waiter (and the store need not be read first).
    waiter = None if respond_async else await _register_waiter(state, batch.batch_id)
    try:
        placed = await publish(state, batch, items, pipeline, on_invalid)
        state.metrics.processed.labels(stage="accepted").inc(batch.total)
        # Where each chunk sits (for a worker's reconciler) is written while the batch runs:
        # off the path of a synchronous answer, and done before any answer is sent.
        recording = asyncio.ensure_future(
            state.store.record_chunk_locations(batch.batch_id, placed)
        )
        try:
            # Without a waiter (respond-async, or no status listener reading yet): 202 at once.
            response = await _respond(
                state, batch, waiter is None, request_id, waiter, decimals=decimals
            )
        except BaseException:
            recording.cancel()  # the reconciler finds the chunks by a topic scan instead
            raise
        await recording
        return response
    finally:
        if waiter is not None:
            state.listener.unregister(batch.batch_id, waiter)


def _same_request(existing: BatchRecord, digest: str) -> BatchRecord:
    if existing.request_digest != digest:
        raise ApiError(
            409,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used with a different request body; use a new key",
            {"batch_id": existing.batch_id},
        )
    return existing


async def publish(
    state: ApiState,
    batch: BatchRecord,
    items: list[Any],
    pipeline: CompiledPipeline,
    on_invalid: str,
) -> list[tuple[int, int]]:
    """Sends the batch's chunks, cut as the batch says; returns where each sits: (partition,
    offset) by chunk index."""
    secret = state.settings.chunk_secret.get_secret_value().encode()
    messages = sign_all(
        secret,
        iter_chunks(
            batch_id=batch.batch_id,
            items=items,
            batch_size=batch.batch_size,
            parallel=batch.parallel,
            pipeline=pipeline.ref,
            on_invalid=on_invalid,  # type: ignore[arg-type]  # "reject" or "skip"
            duplicate_rows=pipeline.duplicate_rows(items),
        ),
    )
    try:
        state.publisher.ensure_reachable()  # at once, not after the topics' or a send's timeout
        if not state.topics_ready.is_set():
            # Publishing first would let the broker auto-create the topic with its own
            # partition count, which the workers' tables would then refuse.
            await _ensure_topics(state)
        # Acknowledged before any chunk goes out, so that it precedes on the status topic
        # whatever a worker announces about the batch (only after reading a chunk).
        await state.publisher.send_all(
            state.topics.status, [(batch.batch_id.encode(), _queued(batch).to_bytes(), [])]
        )
        placed = await state.publisher.send_all(state.topics.requests, messages)
    except KafkaUnavailable as exc:
        await _abandon(state, batch, "Kafka was unavailable at submission")
        raise ApiError(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            f"{exc}; the batch was not accepted",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    except ChunkTooLarge as exc:
        await _abandon(state, batch, "A chunk was over the message size limit")
        raise ApiError(
            413,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{exc}; the batch was not accepted",
            {"batch_size": batch.batch_size},
        ) from None
    log.info(
        "batch published",
        extra={"batch_id": batch.batch_id, "items": batch.total, "chunks": batch.chunk_count},
    )
    return placed


def _queued(batch: BatchRecord) -> BatchStatusEvent:
    return BatchStatusEvent(
        batch_id=batch.batch_id,
        status=BatchStatus.QUEUED,
        total=batch.total,
        processed=0,
        filtered=0,
        chunks_done=0,
        chunk_count=batch.chunk_count,
        at=batch.created_at,
    )


async def _abandon(state: ApiState, batch: BatchRecord, reason: str) -> None:
    """Fails a batch whose chunks could not all be published. Its `queued` may already be on
    the status topic: a chunk_failed on the progress topic has the progress agent repeat the
    final state there (when Kafka is reachable at all)."""
    await state.store.abandon_batch(batch.batch_id, reason)
    failed = ChunkFailedEvent(batch_id=batch.batch_id, reason=reason, at=datetime.now(UTC))
    try:
        await state.publisher.send_all(
            state.topics.progress, [(batch.batch_id.encode(), failed.to_bytes(), [])]
        )
    except (KafkaUnavailable, ChunkTooLarge):
        log.warning("abandoned batch not announced", extra={"batch_id": batch.batch_id})


async def _ensure_topics(state: ApiState) -> None:
    settings = state.settings
    try:
        await asyncio.wait_for(ensure_configured_topics(settings), TOPICS_TIMEOUT_S)
    except TopicCreationFailed as exc:
        log.error("topics refused", extra={"reason": str(exc)})
        raise KafkaUnavailable("Kafka topics could not be created; retry later") from exc
    except (KafkaError, OSError, TimeoutError) as exc:
        raise KafkaUnavailable("Kafka topics could not be created; retry later") from exc
    state.topics_ready.set()


async def _respond(
    state: ApiState,
    batch: BatchRecord,
    respond_async: bool,
    request_id: str,
    waiter: asyncio.Future[BatchStatusEvent] | None = None,
    *,
    decimals: DecimalFormat = "number",
) -> Response:
    results = None
    if batch.status in UNFINISHED and not respond_async:
        batch, results = await _wait_until_finished(state, batch, waiter)
    if batch.status == BatchStatus.COMPLETED:
        return await completed_response(state, batch, results, decimals)
    if batch.status == BatchStatus.FAILED and not respond_async:
        raise ApiError(
            500,
            ErrorCode.PROCESSING_ERROR,
            batch.reason or "The batch failed",
            {"batch_id": batch.batch_id, "request_id": request_id},
        )
    return accepted(batch)


async def _register_waiter(
    state: ApiState, batch_id: str
) -> asyncio.Future[BatchStatusEvent] | None:
    """A future for the batch's final status event, once the listener reads the topic."""
    if not await state.listener.wait_ready(LISTENER_READY_TIMEOUT_S):
        return None
    return state.listener.register(batch_id)


async def _wait_until_finished(
    state: ApiState, batch: BatchRecord, waiter: asyncio.Future[BatchStatusEvent] | None
) -> tuple[BatchRecord, list[Any] | None]:
    """The batch once it is final, or as it stands after the synchronous wait, and with it
    the results of a small completed batch (read together; None: read them afterwards).

    ``waiter``, registered before the batch was published, sees its end whenever it comes;
    without one (a repeated request), the store is read once after registering, in case the
    batch ended before.
    """
    future = waiter
    if future is None:
        future = await _register_waiter(state, batch.batch_id)
        if future is None:
            return batch, None
    try:
        if waiter is None:
            current = await state.store.get_batch(batch.batch_id)
            if current is not None and current.status not in UNFINISHED:
                return current, None
        await asyncio.wait_for(asyncio.shield(future), state.settings.sync_wait_s)
    except TimeoutError:
        pass
    finally:
        if waiter is None:
            state.listener.unregister(batch.batch_id, future)
    found, results = await state.store.get_batch_and_results(batch.batch_id)
    return found or batch, results


async def completed_response(
    state: ApiState,
    batch: BatchRecord,
    results: list[Any] | None = None,
    decimals: DecimalFormat = "number",
) -> Response:
    if results is None:
        results = [item async for item in state.store.iter_results(batch.batch_id)]
    body = BatchResult(
        processed=batch.processed,
        filtered=batch.filtered,
        duration=round(batch.duration or 0.0, 6),
        results=results,
        batch_id=batch.batch_id,
    )
    # jsonio keeps each amount's scale: 100.50 stays 100.50 in the bytes ("100.50" as asked).
    return Response(
        jsonio.dumps(jsonio.decimals_as(decimals, body.model_dump(mode="python"))),
        media_type="application/json",
    )
