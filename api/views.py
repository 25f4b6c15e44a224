"""Turning stored batches into response bodies."""

from __future__ import annotations

from api.errors import not_found
from api.state import ApiState
from schemas.http import BatchStatusBody
from schemas.statuses import BatchStatus
from store import ApiKeyRecord, BatchRecord


async def owned_batch(state: ApiState, caller: ApiKeyRecord, batch_id: str) -> BatchRecord:
    """The caller's batch; another key's batch is as invisible as a missing one."""
    batch = await state.store.get_batch(batch_id)
    if batch is None or batch.owner_key_id != caller.key_id:
        raise not_found(batch_id)
    return batch


def status_from_record(batch: BatchRecord, replay_of: str | None = None) -> BatchStatusBody:
    """The batch as stored: its counts are the workers' progress table's, projected into the
    store once per group of chunks while it runs and in full when it ends."""
    if batch.status == BatchStatus.COMPLETED or batch.total == 0:
        progress = 100
    else:
        progress = min(99, (batch.processed + batch.filtered) * 100 // batch.total)
    return BatchStatusBody(
        batch_id=batch.batch_id,
        status=batch.status,
        progress=progress,
        processed=batch.processed,
        filtered=batch.filtered,
        invalid=batch.invalid,
        duration=batch.duration,
        started_at=batch.started_at,
        completed_at=batch.completed_at,
        total=batch.total,
        pipeline=batch.pipeline_ref,
        created_at=batch.created_at,
        reason=batch.reason,
        metadata=batch.metadata,
        replay_of=replay_of,
    )
