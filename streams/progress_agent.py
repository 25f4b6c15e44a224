"""The progress agent: counts finished chunks per batch and finishes the batch.

It reads the progress and control topics, both keyed by batch ID, so one worker owns all the
state of a batch: the ``progress`` table (counts and status by batch ID) and the ``chunks-done``
table (which chunks were counted, by ``<batch ID>/<chunk index>``). A chunk reported twice is
counted once. External effects (the store, the status event) are idempotent and happen before
the table is written, so a crash between the two redoes them harmlessly on redelivery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from schemas import jsonio
from schemas.events import (
    BatchStatusEvent,
    CancelCommand,
    ChunkDoneEvent,
    ChunkFailedEvent,
    decode,
)
from store import BatchRecord, NewBatch
from streams.retry import retry_forever

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)
REJECTED_REASON = "Invalid records in a batch with on_invalid=reject; see the batch's errors"


def _new_state(total: int, chunk_count: int, on_invalid: str = "reject") -> dict[str, Any]:
    return {
        "status": "processing",
        "total": total,
        "chunk_count": chunk_count,
        "on_invalid": on_invalid,
        "done": 0,
        "processed": 0,
        "filtered": 0,
        "invalid": 0,
    }


async def handle_progress(sa: StreamsApp, payload: bytes) -> str:
    try:
        kind = jsonio.loads(payload).get("kind")
        if kind == "chunk_done":
            return await _chunk_done(sa, decode(ChunkDoneEvent, payload))
        if kind == "chunk_failed":
            return await _chunk_failed(sa, decode(ChunkFailedEvent, payload))
        if kind == "cancel":
            return await _cancel(sa, decode(CancelCommand, payload))
    except (jsonio.JSONDecodeError, ValidationError, AttributeError) as exc:
        log.warning("progress message ignored", extra={"error_type": type(exc).__name__})
        return "ignored"
    log.warning("progress message of unknown kind ignored")
    return "ignored"


async def _chunk_done(sa: StreamsApp, event: ChunkDoneEvent) -> str:
    table, seen = sa.progress_table, sa.chunks_done_table
    chunk_key = f"{event.batch_id}/{event.chunk_index}"
    if seen.get(chunk_key):
        return "duplicate"
    # Not in the table: a new batch, or a finished one whose state was pruned (the store
    # then says it is final).
    state = await _current_state(sa, event.batch_id) or _new_state(
        event.total, event.chunk_count, event.on_invalid
    )
    if state["status"] != "processing":
        return "ignored"
    state = {
        **state,
        "done": state["done"] + 1,
        "processed": state["processed"] + event.processed,
        "filtered": state["filtered"] + event.filtered,
        "invalid": state["invalid"] + event.invalid,
    }
    if state["done"] >= state["chunk_count"]:
        rejected = state["invalid"] > 0 and state["on_invalid"] == "reject"
        status = "failed" if rejected else "completed"
        final = await _finish(
            sa, event.batch_id, state, status, REJECTED_REASON if rejected else None
        )
        return str(final["status"])
    seen[chunk_key] = True
    table[event.batch_id] = state
    return "counted"


async def _chunk_failed(sa: StreamsApp, event: ChunkFailedEvent) -> str:
    state = await _current_state(sa, event.batch_id)
    if state is None:
        # A producer's batch whose first message was undecodable: nothing registered it yet,
        # but it still has to end up failed, where its owner can see why.
        state = await _register_unknown_batch(sa, event)
    if state["status"] != "processing":
        return "ignored"
    await _finish(sa, event.batch_id, state, "failed", event.reason)
    return "failed"


async def _cancel(sa: StreamsApp, command: CancelCommand) -> str:
    state = await _current_state(sa, command.batch_id)
    if state is None:
        return "refused"
    if state["status"] != "processing":
        # Already final: repeat its status so that a waiting cancel request learns why (409).
        await announce_stored(sa, command.batch_id)
        return "refused"
    await _finish(sa, command.batch_id, state, "cancelled", None)
    return "cancelled"


async def _register_unknown_batch(sa: StreamsApp, event: ChunkFailedEvent) -> dict[str, Any]:
    store = await sa.resources.store()
    unknown = NewBatch(
        batch_id=event.batch_id,
        owner_key_id=None,
        pipeline_ref="unknown",
        on_invalid="reject",
        total=0,
        chunk_count=0,
        batch_size=1,
        parallel=True,
        created_at=event.at,
    )
    return _state_of(await retry_forever("register batch", lambda: store.ensure_batch(unknown)))


def _state_of(batch: BatchRecord) -> dict[str, Any]:
    state = _new_state(batch.total, batch.chunk_count, batch.on_invalid)
    if batch.status not in ("queued", "processing"):
        state["status"] = batch.status
    return state


async def _current_state(sa: StreamsApp, batch_id: str) -> dict[str, Any] | None:
    """The table's state of a batch, or one made from its stored row if no chunk was counted yet."""
    state: dict[str, Any] | None = sa.progress_table.get(batch_id)
    if state is not None:
        return state
    store = await sa.resources.store()
    batch = await retry_forever("read batch", lambda: store.get_batch(batch_id))
    return None if batch is None else _state_of(batch)


async def _finish(
    sa: StreamsApp, batch_id: str, state: dict[str, Any], status: str, reason: str | None
) -> dict[str, Any]:
    """Makes the batch final in the store, announces it, and forgets its table state (later
    messages about it find the final status in the store)."""
    now = datetime.now(UTC)
    store = await sa.resources.store()
    finished_now = await retry_forever(
        "finish batch",
        lambda: store.finish_batch(
            batch_id,
            status,
            state["processed"],
            state["filtered"],
            state["invalid"],
            now,
            reason,
        ),
    )
    # Announced from the store, which is authoritative: when another path finished the batch
    # first (a cancel, the reconciler), its status is the one repeated, not this one.
    stored = await announce_stored(sa, batch_id, chunks_done=state["done"])
    if finished_now and stored is not None:
        if stored.duration is not None:
            sa.metrics.duration.labels(scope="batch").observe(stored.duration)
        if stored.status == "failed":
            sa.metrics.errors.labels(error_type="batch_failed").inc()
        log.info("batch finished", extra={"batch_id": batch_id, "status": stored.status})
    for index in range(state["chunk_count"]):
        sa.chunks_done_table.pop(f"{batch_id}/{index}", None)
    sa.progress_table.pop(batch_id, None)
    return {**state, "status": stored.status if stored is not None else status}


async def announce_stored(
    sa: StreamsApp, batch_id: str, chunks_done: int | None = None
) -> BatchRecord | None:
    """Sends the stored final state of a batch on the status topic (idempotent)."""
    store = await sa.resources.store()
    batch = await retry_forever("read batch", lambda: store.get_batch(batch_id))
    if batch is None or batch.status in ("queued", "processing"):
        return batch
    event = BatchStatusEvent(
        batch_id=batch_id,
        status=batch.status,
        total=batch.total,
        processed=batch.processed,
        filtered=batch.filtered,
        invalid=batch.invalid,
        chunks_done=(
            chunks_done
            if chunks_done is not None
            else (batch.chunk_count if batch.status == "completed" else 0)
        ),
        chunk_count=batch.chunk_count,
        reason=batch.reason,
        at=batch.completed_at or datetime.now(UTC),
    )
    await retry_forever(
        "send status", lambda: sa.status.send(key=batch_id.encode(), value=event.to_bytes())
    )
    return batch
