"""The transform agent: one chunk from the requests topic in, one decision out.

Per message the decision is explicit: transform it, skip it (its batch is already finished,
e.g. cancelled), or dead-letter it. Every effect is idempotent by (batch ID, chunk index), so a
chunk delivered twice after a crash or rebalance is stored and counted once.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from schemas import jsonio
from schemas.events import (
    ChunkDoneEvent,
    ChunkEvent,
    ChunkFailedEvent,
    DeadLetterEvent,
    ResultChunkEvent,
    decode,
)
from store import NewBatch
from streams.retry import retry_forever
from transforms import TransformsError

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)
FINISHED = frozenset({"completed", "cancelled", "failed"})
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SourceMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def describe_error(exc: Exception) -> str:
    """A message about the failure that never repeats the input it failed on."""
    if isinstance(exc, ValidationError):
        problems = sorted(
            {f"{'.'.join(map(str, e['loc'])) or '$'}: {e['type']}" for e in exc.errors()}
        )
        return "Invalid chunk message: " + "; ".join(problems[:10])
    if isinstance(exc, jsonio.JSONDecodeError | TransformsError):
        return str(exc)
    return f"Unexpected {type(exc).__name__} while transforming the chunk"


def batch_id_from_key(key: bytes | None) -> str | None:
    """Chunks of a parallel batch are keyed ``<batch ID>/<chunk index>``, others by batch ID."""
    if not key:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    batch_id = text.split("/", 1)[0]
    return batch_id if BATCH_ID_RE.match(batch_id) else None


async def handle_chunk(sa: StreamsApp, message: SourceMessage) -> str:
    """Processes one requests-topic message; returns the decision taken (for logs and tests)."""
    in_flight = sa.metrics.memory.labels(kind="in_flight")
    in_flight.inc(len(message.value))
    try:
        return await _handle_chunk(sa, message)
    finally:
        in_flight.dec(len(message.value))


async def _handle_chunk(sa: StreamsApp, message: SourceMessage) -> str:
    started = time.perf_counter()
    try:
        chunk = decode(ChunkEvent, message.value)
    except (jsonio.JSONDecodeError, ValidationError) as exc:
        await dead_letter(sa, message, batch_id_from_key(message.key), None, exc)
        return "dead-lettered"
    store = await sa.resources.store()
    if sa.resources.recently_processing(chunk.batch_id):
        batch_status: str | None = "processing"
    else:
        batch = await retry_forever("read batch", lambda: store.get_batch(chunk.batch_id))
        batch_status = None if batch is None else batch.status
        if batch_status not in FINISHED:
            # Stamped when read, not when used: a running batch is looked up again every
            # STATUS_TTL_S, so a cancel is seen however steadily its chunks keep coming.
            sa.resources.remember_processing(chunk.batch_id)
    if batch_status in FINISHED:
        log.info("chunk skipped", extra=_log_fields(chunk, message, reason=batch_status))
        return "skipped"
    if batch_status is None:
        # Straight from an event-driven producer: the API did not register this batch.
        await retry_forever("register batch", lambda: store.ensure_batch(_new_batch(chunk)))
    try:
        pipeline = sa.resources.registry.get(chunk.pipeline)
        outcome = pipeline.run(chunk.items, chunk.first_row, chunk.duplicate_rows)
    except Exception as exc:  # noqa: BLE001 - a chunk that breaks the engine is a dead letter
        await dead_letter(sa, message, chunk.batch_id, chunk.chunk_index, exc)
        return "dead-lettered"
    now = datetime.now(UTC)
    errors = [error.as_dict() for error in outcome.errors]
    if batch_status in (None, "queued"):
        # A write per batch, not per chunk: later chunks find the batch processing already.
        await retry_forever("mark processing", lambda: store.mark_processing(chunk.batch_id, now))
    await retry_forever(
        "store chunk",
        lambda: store.put_chunk(
            chunk.batch_id, chunk.chunk_index, chunk.first_row, outcome.results, errors
        ),
    )
    key = chunk.batch_id.encode()
    result = ResultChunkEvent(
        batch_id=chunk.batch_id,
        chunk_index=chunk.chunk_index,
        chunk_count=chunk.chunk_count,
        first_row=chunk.first_row,
        results=outcome.results,
        errors=errors,
    )
    await retry_forever("send result", lambda: sa.results.send(key=key, value=result.to_bytes()))
    done = ChunkDoneEvent(
        batch_id=chunk.batch_id,
        chunk_index=chunk.chunk_index,
        chunk_count=chunk.chunk_count,
        total=chunk.total,
        on_invalid=chunk.on_invalid,
        processed=outcome.processed,
        filtered=outcome.filtered + len(errors),
        invalid=len(errors),
        at=now,
    )
    await retry_forever(
        "send progress", lambda: sa.progress_out.send(key=key, value=done.to_bytes())
    )
    elapsed_s = time.perf_counter() - started
    sa.metrics.processed.labels(stage="transformed").inc(outcome.processed)
    sa.metrics.filtered.labels(stage="transformed").inc(done.filtered)
    sa.metrics.duration.labels(scope="chunk").observe(elapsed_s)
    if errors:
        sa.metrics.errors.labels(error_type="validation").inc(len(errors))
    log.info(
        "chunk transformed",
        extra=_log_fields(
            chunk,
            message,
            processed=outcome.processed,
            filtered=done.filtered,
            duration_ms=round(elapsed_s * 1000, 3),
        ),
    )
    return "transformed"


def _new_batch(chunk: ChunkEvent) -> NewBatch:
    # Chunk i starts at row i * batch_size; only a batch's last chunk may be shorter.
    if chunk.chunk_index > 0:
        batch_size = chunk.first_row // chunk.chunk_index
    elif chunk.chunk_count > 1:
        batch_size = len(chunk.items)
    else:
        batch_size = chunk.total
    return NewBatch(
        batch_id=chunk.batch_id,
        owner_key_id=None,
        pipeline_ref=chunk.pipeline,
        on_invalid=chunk.on_invalid,
        total=chunk.total,
        chunk_count=chunk.chunk_count,
        batch_size=max(batch_size, 1),
        parallel=True,
        created_at=datetime.now(UTC),
    )


async def dead_letter(
    sa: StreamsApp,
    message: SourceMessage,
    batch_id: str | None,
    chunk_index: int | None,
    exc: Exception,
) -> None:
    reason = describe_error(exc)
    now = datetime.now(UTC)
    letter = DeadLetterEvent(
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        batch_id=batch_id,
        chunk_index=chunk_index,
        error_type=type(exc).__name__,
        error=reason,
        at=now,
    )
    key = batch_id.encode() if batch_id else None
    await sa.dead_letters.send(key=key, value=letter.to_bytes())
    sa.metrics.errors.labels(error_type="dead_letter").inc()
    log.warning(
        "chunk dead-lettered",
        extra={
            "source": message.where(),
            "batch_id": batch_id,
            "chunk_index": chunk_index,
            "error_type": type(exc).__name__,
        },
    )
    if batch_id is not None:
        failed = ChunkFailedEvent(batch_id=batch_id, chunk_index=chunk_index, reason=reason, at=now)
        await sa.progress_out.send(key=batch_id.encode(), value=failed.to_bytes())


def _log_fields(chunk: ChunkEvent, message: SourceMessage, **more: object) -> dict[str, object]:
    return {
        "batch_id": chunk.batch_id,
        "chunk_index": chunk.chunk_index,
        "source": message.where(),
        **more,
    }
