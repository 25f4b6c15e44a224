"""Retrying a failed batch: only its dead-lettered chunks run again, under the same batch ID.

A batch is retried only when it failed for a reason outside its data: a chunk dead-lettered
because Kafka or the store stayed away (``gave_up``), the workers lacked its pipeline
(``unknown_pipeline``), the engine raised (``pipeline_failed``) or the store refused the write
(``store_refused``). A batch that failed on invalid records, lost chunks or was never fully
published answers 409: running the same input again would fail the same way, or there is none.

The chunks to run are those with no stored results. They are read back from the requests topic
where the API published them (and verified, as for a replay), the batch is reopened, the
progress table is told the stored chunks' counts again, then the chunks are published again as
they were: every step is idempotent, and a retry cut short is finished by the reconciler.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from api.errors import ApiError
from api.replay import InputUnverifiable, read_published, verified_chunk
from api.state import ApiState
from api.submission import RETRY_AFTER_S
from schemas.http import BatchAccepted, ErrorCode
from schemas.statuses import BatchStatus
from store import BatchRecord
from streams.admission import DeadLetterCode
from streams.dead_letters import SourceMessage
from streams.errors import KafkaUnavailable
from streams.progress_handler import stored_counts_events
from streams.signing import Headers

log = logging.getLogger(__name__)
RETRYABLE = frozenset(
    {
        DeadLetterCode.GAVE_UP,
        DeadLetterCode.UNKNOWN_PIPELINE,
        DeadLetterCode.PIPELINE_FAILED,
        DeadLetterCode.STORE_REFUSED,
    }
)
# streams.dead_letters.DeadLetter.batch_reason: "Chunk 3 was dead-lettered (gave_up): ..."
_DEAD_LETTERED = re.compile(r"Chunk \d+ was dead-lettered \(([a-z_]+)\)")


def retryable(batch: BatchRecord) -> bool:
    """Whether the batch failed for a reason outside its data (see the module's docstring)."""
    found = _DEAD_LETTERED.match(batch.reason or "")
    return batch.status == BatchStatus.FAILED and found is not None and found[1] in RETRYABLE


async def retry(state: ApiState, batch: BatchRecord) -> JSONResponse:
    if batch.status != BatchStatus.FAILED:
        raise ApiError(
            409,
            ErrorCode.BATCH_NOT_FAILED,
            f"Only a failed batch can be retried; this one is {batch.status}",
            {"batch_id": batch.batch_id, "status": batch.status},
        )
    if not retryable(batch):
        raise ApiError(
            409,
            ErrorCode.NOT_RETRYABLE,
            "This batch failed on its data or its input is gone, so running it again would "
            "fail the same way; fix the data and submit it again (see the batch's reason)",
            {"batch_id": batch.batch_id},
        )
    stored = await state.store.chunk_indexes(batch.batch_id)
    missing = sorted(set(range(batch.chunk_count)) - stored)
    locations = await state.store.chunk_locations(batch.batch_id, missing)
    if len(locations) != len(missing):
        raise ApiError(
            409,
            ErrorCode.NOT_RETRYABLE,
            "The place of this batch's input on the requests topic is not recorded",
            {"batch_id": batch.batch_id},
        )
    messages = await read_published(state, batch, locations)
    secret = state.settings.chunk_secret.get_secret_value().encode()
    try:
        for index, message in messages.items():
            verified_chunk(secret, batch, index, message)
    except InputUnverifiable:
        raise ApiError(
            409,
            ErrorCode.NOT_RETRYABLE,
            "The batch's input on the requests topic could not be verified; submit it again",
            {"batch_id": batch.batch_id},
        ) from None
    if batch.reason is None or not await state.store.reopen_batch(batch.batch_id, batch.reason):
        raise ApiError(
            409,
            ErrorCode.BATCH_CHANGED,
            "The batch changed meanwhile; read its status",
            {"batch_id": batch.batch_id},
        )
    try:
        await _count_stored_again(state, batch)
        await state.publisher.send_all(
            state.topics.requests, [_as_published(messages[index]) for index in missing]
        )
    except KafkaUnavailable:
        # Reopened already: the workers' reconciler counts and reads what did not get through.
        raise ApiError(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            "Kafka stopped answering during the retry; the batch is reopened and the workers "
            "finish it once Kafka is back",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    log.info("batch retried", extra={"batch_id": batch.batch_id, "chunks": len(missing)})
    body = BatchAccepted(batch_id=batch.batch_id, status=BatchStatus.PROCESSING)
    return JSONResponse(body.model_dump(), status_code=202)


async def _count_stored_again(state: ApiState, batch: BatchRecord) -> None:
    # The table forgot the batch when it failed; acknowledged before any chunk runs again, so
    # that the agent counts the stored chunks first and ends the batch when the rest are in.
    summaries = await state.store.chunk_summaries(batch.batch_id)
    events = stored_counts_events(batch, summaries, datetime.now(UTC))
    key = batch.batch_id.encode()
    if events:
        await state.publisher.send_all(
            state.topics.progress, [(key, event.to_bytes(), []) for event in events]
        )


def _as_published(message: SourceMessage) -> tuple[bytes, bytes, Headers]:
    return message.key or b"", message.value, message.headers
