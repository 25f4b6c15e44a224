"""Ending a batch: the one place that decides a finished batch's status and makes it final.

The progress table is the authority for a batch's counts and for when it is done (see
streams.progress_handler); the store's batch row is a projection of it, written here when the
batch ends (and as live counts while it runs). The progress agent and the reconciler both end
batches through this module.

A batch of one chunk has no counts to fold: the transform handler ends it in the transaction
that stores its chunk, with the ending and the announcement made here (``ending``,
``status_message``, ``observe_finished``), and its progress never reaches the table. That saves
a synchronous 1-item batch a round through the progress topic, a read and a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.events import BatchStatusEvent
from schemas.statuses import BatchStatus
from store import BatchEnding, BatchRecord
from streams.outputs import Outgoing, Outputs
from streams.retry import retry_transient
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)
REJECTED_REASON = "Invalid records in a batch with on_invalid=reject; see the batch's errors"


def final_status(on_invalid: str, invalid: int) -> tuple[BatchStatus, str | None]:
    """The status of a batch whose every chunk was counted, and its reason: with
    on_invalid=reject, one invalid record fails the whole batch."""
    if invalid > 0 and on_invalid == "reject":
        return BatchStatus.FAILED, REJECTED_REASON
    return BatchStatus.COMPLETED, None


def ending(on_invalid: str, counts: tuple[int, int, int]) -> BatchEnding:
    """How a batch ends whose every chunk is counted, with ``counts`` (processed, filtered,
    invalid)."""
    status, reason = final_status(on_invalid, counts[2])
    return BatchEnding(status, counts, reason)


class FinishingStore(Protocol):
    async def end_batch(
        self,
        batch_id: str,
        status: str,
        counts: tuple[int, int, int],
        completed_at: datetime,
        reason: str | None = None,
        counted_chunks: Collection[int] | None = None,
    ) -> tuple[bool, BatchRecord | None]: ...

    async def get_batch(self, batch_id: str) -> BatchRecord | None: ...


class BatchFinisher:
    def __init__(
        self, *, store: FinishingStore, outputs: Outputs, metrics: Metrics, status_topic: str
    ) -> None:
        self._store = store
        self._outputs = outputs
        self._metrics = metrics
        self._status_topic = status_topic

    async def finish(
        self,
        batch_id: str,
        status: str,
        counts: tuple[int, int, int],
        reason: str | None,
        chunks_done: int,
        counted_chunks: Collection[int] | None = None,
    ) -> BatchRecord | None:
        """Makes the batch final in the store (once) and announces the stored state.

        ``counted_chunks``: for a cancel, the chunks the counts include; other stored chunks
        go, so that the results are exactly the rows the counts say were processed."""
        now = datetime.now(UTC)
        finished_now, stored = await retry_transient(
            "finish batch",
            lambda: self._store.end_batch(batch_id, status, counts, now, reason, counted_chunks),
        )
        self._metrics.store_transactions.labels(kind="finish").inc()
        # Announced as stored, which keeps the first ending: when another path finished the
        # batch first (a cancel, say), its status is the one repeated, not this one.
        await self._send_status(stored, chunks_done)
        if finished_now and stored is not None:
            self.observe_finished(stored)
        return stored

    def observe_finished(self, batch: BatchRecord) -> None:
        """Metrics and the log line of a batch that has just ended."""
        if batch.duration is not None:
            self._metrics.duration.labels(scope="batch").observe(batch.duration)
        if batch.status == BatchStatus.FAILED:
            self._metrics.errors.labels(error_type="batch_failed").inc()
        log.info("batch finished", extra={"batch_id": batch.batch_id, "status": batch.status})

    async def announce(self, batch_id: str, chunks_done: int | None = None) -> BatchRecord | None:
        """Sends the stored final state of a batch on the status topic (idempotent)."""
        batch = await retry_transient("read batch", lambda: self._store.get_batch(batch_id))
        await self._send_status(batch, chunks_done)
        return batch

    async def _send_status(self, batch: BatchRecord | None, chunks_done: int | None) -> None:
        message = None if batch is None else self.status_message(batch, chunks_done)
        if message is not None:
            await retry_transient("send status", lambda: self._outputs.send([message]))

    def live_status(
        self, batch_id: str, status: str, state: Mapping[str, Any], now: float
    ) -> Outgoing:
        """The ``queued`` or ``processing`` event of a running batch, from its table state."""
        event = BatchStatusEvent(
            batch_id=batch_id,
            status=status,
            total=state["total"],
            processed=state["processed"],
            filtered=state["filtered"],
            invalid=state["invalid"],
            chunks_done=state["done"],
            chunk_count=state["chunk_count"],
            at=datetime.fromtimestamp(now, UTC),
        )
        return Outgoing(self._status_topic, batch_id.encode(), event.to_bytes())

    def status_message(self, batch: BatchRecord, chunks_done: int | None = None) -> Outgoing | None:
        """The status event of a finished batch as stored (None while it runs)."""
        if not batch.finished:
            return None
        if chunks_done is None:
            chunks_done = batch.chunk_count if batch.status == BatchStatus.COMPLETED else 0
        event = BatchStatusEvent(
            batch_id=batch.batch_id,
            status=batch.status,
            total=batch.total,
            processed=batch.processed,
            filtered=batch.filtered,
            invalid=batch.invalid,
            chunks_done=chunks_done,
            chunk_count=batch.chunk_count,
            reason=batch.reason,
            at=batch.completed_at or datetime.now(UTC),
        )
        return Outgoing(self._status_topic, batch.batch_id.encode(), event.to_bytes())
