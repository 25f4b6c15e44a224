"""The progress handler: folds a group of progress and control messages into one table update
per batch, and ends batches.

The ``progress`` table, partitioned by batch ID like the progress and control topics, is the one
authority for a batch's counts and for when it is done. Its value per batch holds the counts and
a bitmap of the chunks already counted, in one record, so a chunk reported twice is counted once
and a crash can never leave a chunk marked but not counted. The store's batch row is a
projection: live counts once per group, the final state when the batch ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from schemas import jsonio
from schemas.events import (
    CancelCommand,
    ChunkCounts,
    ChunkFailedEvent,
    ChunksDoneEvent,
    decode,
)
from schemas.statuses import BatchStatus
from store import BatchRecord, stored_chunk_counts
from streams.admission import DeadLetterCode
from streams.dead_letters import DeadLetter, SourceMessage, dead_letter_message
from streams.finishing import BatchFinisher, final_status
from streams.outputs import Outgoing, Outputs
from streams.retry import GaveUp, retry_transient
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)
ProgressEvent = ChunksDoneEvent | ChunkFailedEvent | CancelCommand
_KINDS: dict[str, type[ProgressEvent]] = {
    "chunks_done": ChunksDoneEvent,
    "chunk_failed": ChunkFailedEvent,
    "cancel": CancelCommand,
}
# Chunk counts per progress message: the progress topic keeps Kafka's 1 MB message limit.
COUNTS_PER_MESSAGE = 1_000
# A running batch's counts go to the status topic at most this often.
PROCESSING_EVERY_S = 1.0


class ProgressStore(Protocol):
    async def get_batch(self, batch_id: str) -> BatchRecord | None: ...

    async def record_progress(self, counts: Sequence[tuple[str, int, int, int]]) -> None: ...


def new_state(batch: BatchRecord) -> dict[str, Any]:
    return {
        "status": BatchStatus.PROCESSING if not batch.finished else batch.status,
        "total": batch.total,
        "chunk_count": batch.chunk_count,
        "on_invalid": batch.on_invalid,
        "done": 0,
        "processed": 0,
        "filtered": 0,
        "invalid": 0,
        "marks": "0",
        # When the counts last went to the status topic (epoch seconds; 0: never).
        "announced_at": 0.0,
    }


def count_chunks(state: dict[str, Any], chunks: Iterable[ChunkCounts]) -> dict[str, Any]:
    """The state with every chunk not yet counted added (chunks outside the batch ignored)."""
    marks = int(state["marks"], 16)
    state = dict(state)
    for chunk in chunks:
        bit = 1 << chunk.chunk_index
        if chunk.chunk_index >= state["chunk_count"] or marks & bit:
            continue
        marks |= bit
        state["done"] += 1
        state["processed"] += chunk.processed
        state["filtered"] += chunk.filtered
        state["invalid"] += chunk.invalid
    state["marks"] = format(marks, "x")
    return state


def stored_counts_events(
    batch: BatchRecord, summaries: list[tuple[int, int, int]], now: datetime
) -> list[ChunksDoneEvent]:
    """Progress messages that count the batch's stored chunks (``chunk_summaries`` rows) again:
    the table counts only those it has not counted, so sending them is always safe."""
    counts = [
        ChunkCounts(
            chunk_index=c.chunk_index, processed=c.processed, filtered=c.filtered, invalid=c.invalid
        )
        for c in stored_chunk_counts(batch, summaries)
    ]
    return [
        ChunksDoneEvent(
            batch_id=batch.batch_id,
            chunk_count=batch.chunk_count,
            total=batch.total,
            on_invalid=batch.on_invalid,
            chunks=counts[start : start + COUNTS_PER_MESSAGE],
            at=now,
        )
        for start in range(0, len(counts), COUNTS_PER_MESSAGE)
    ]


def counted_chunks(state: dict[str, Any]) -> list[int]:
    """The indexes of the chunks the state's counts include."""
    marks = int(state["marks"], 16)
    return [index for index in range(marks.bit_length()) if marks >> index & 1]


def decode_progress(payload: bytes) -> ProgressEvent | DeadLetterCode:
    """The event, or why the payload is none."""
    try:
        message = jsonio.loads(payload)
    except jsonio.JSONDecodeError:
        return DeadLetterCode.UNDECODABLE
    kind = message.get("kind") if isinstance(message, dict) else None
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return DeadLetterCode.INVALID_EVENT
    try:
        return decode(model, payload)
    except (jsonio.JSONDecodeError, ValidationError):
        return DeadLetterCode.INVALID_EVENT


def _refusals(
    sourced: Sequence[tuple[SourceMessage, ProgressEvent]], code: DeadLetterCode
) -> list[DeadLetter]:
    return [
        DeadLetter(0, message, code, "ProgressRefused", batch_id=event.batch_id)
        for message, event in sourced
    ]


class ProgressHandler:
    def __init__(
        self,
        *,
        store: ProgressStore,
        table: MutableMapping[Any, Any],
        finisher: BatchFinisher,
        outputs: Outputs,
        dead_letter_topic: str,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._table = table
        self._finisher = finisher
        self._outputs = outputs
        self._dead_letter_topic = dead_letter_topic
        self._metrics = metrics
        # The group's processing events, sent together once it is applied.
        self._live: list[Outgoing] = []

    async def handle_group(
        self, messages: Sequence[SourceMessage], focus: Callable[[str], bool] = lambda _: True
    ) -> dict[str, str]:
        """Applies a group of messages; returns the decision per batch (for logs and tests).

        ``focus(batch_id)`` points the table at the batch's own partition before its state is
        read or written (Faust files a table write under the current event's partition); it
        answers False when no message of the group is keyed by that batch ID, and then the
        batch's messages are ignored: a message keyed otherwise than its batch would put the
        batch's state on a partition another worker may own.

        A message that does not decode, is keyed otherwise, or names no registered batch is
        dead-lettered; the group goes on.
        """
        by_batch: dict[str, list[tuple[SourceMessage, ProgressEvent]]] = {}
        letters: list[DeadLetter] = []
        for position, message in enumerate(messages):
            event = decode_progress(message.value)
            if isinstance(event, DeadLetterCode):
                letters.append(DeadLetter(position, message, event, "ProgressRefused"))
            else:
                by_batch.setdefault(event.batch_id, []).append((message, event))
        decisions: dict[str, str] = {}
        live: list[tuple[str, int, int, int]] = []
        now = time.time()
        for batch_id, sourced in by_batch.items():
            if not focus(batch_id):
                letters.extend(_refusals(sourced, DeadLetterCode.KEY_MISMATCH))
                decisions[batch_id] = "dead-lettered"
                continue
            events = [event for _, event in sourced]
            try:
                decision, state = await self._apply(batch_id, events, now)
            except GaveUp:
                # The store stayed away; the table is untouched, and the reconciler counts
                # this batch's stored chunks again once it is back.
                log.warning("progress not applied", extra={"batch_id": batch_id})
                decisions[batch_id] = "deferred"
                continue
            decisions[batch_id] = decision
            if decision == "unknown":
                letters.extend(_refusals(sourced, DeadLetterCode.UNKNOWN_BATCH))
            if decision == "counted" and state is not None:
                live.append((batch_id, state["processed"], state["filtered"], state["invalid"]))
        if live:
            try:
                await retry_transient("record progress", lambda: self._store.record_progress(live))
                self._metrics.store_transactions.labels(kind="progress").inc()
            except GaveUp:
                log.warning("live counts not recorded", extra={"batches": len(live)})
        await self._send_live_statuses()
        if letters:
            await self._send_dead_letters(letters)
        return decisions

    async def _send_live_statuses(self) -> None:
        statuses, self._live = self._live, []
        if not statuses:
            return
        try:
            await retry_transient("send live statuses", lambda: self._outputs.send(statuses))
        except GaveUp:
            # Progress only: the final state still goes out when the batch ends.
            log.warning("live statuses not sent", extra={"count": len(statuses)})

    async def _send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        now = datetime.now(UTC)
        topic = self._dead_letter_topic
        outgoing = [dead_letter_message(letter, topic, self._metrics, now) for letter in letters]
        try:
            await retry_transient("send dead letters", lambda: self._outputs.send(outgoing))
        except GaveUp:
            # The refused messages stay on their topic; they changed nothing.
            log.warning("dead letters not sent", extra={"count": len(outgoing)})

    async def _apply(
        self, batch_id: str, events: list[ProgressEvent], now: float
    ) -> tuple[str, dict[str, Any] | None]:
        key = batch_id.encode()
        state: dict[str, Any] | None = self._table.get(key)
        if state is None:
            # Not in the table: a batch whose first chunks these are, or a finished one whose
            # state was pruned (the store then says it is final).
            batch = await retry_transient("read batch", lambda: self._store.get_batch(batch_id))
            if batch is None:
                return "unknown", None
            state = new_state(batch)
        if state["status"] != BatchStatus.PROCESSING:
            if any(isinstance(event, CancelCommand | ChunkFailedEvent) for event in events):
                # Already final: repeat its status, so that a waiting cancel learns why (409),
                # and a batch the API gave up on after announcing it queued ends there too.
                await self._send_live_statuses()
                await self._finisher.announce(batch_id)
                return "refused", None
            return "ignored", None
        # In arrival order: whatever ends the batch first wins, and what follows it in the
        # group finds the batch final (as it would in a later group).
        for event in events:
            if isinstance(event, CancelCommand):
                return await self._end(batch_id, state, BatchStatus.CANCELLED, None), None
            if isinstance(event, ChunkFailedEvent):
                return await self._end(batch_id, state, BatchStatus.FAILED, event.reason), None
            state = count_chunks(state, event.chunks)
            if state["done"] >= state["chunk_count"]:
                status, reason = final_status(state["on_invalid"], state["invalid"])
                return await self._end(batch_id, state, status, reason), None
        if now - state.get("announced_at", 0.0) >= PROCESSING_EVERY_S:
            self._live.append(
                self._finisher.live_status(batch_id, BatchStatus.PROCESSING, state, now)
            )
            state = {**state, "announced_at": now}
        self._table[key] = state
        return "counted", state

    async def _end(
        self, batch_id: str, state: dict[str, Any], status: str, reason: str | None
    ) -> str:
        # A processing event still waiting must not land after the final one.
        await self._send_live_statuses()
        counts = (state["processed"], state["filtered"], state["invalid"])
        counted = counted_chunks(state) if status == BatchStatus.CANCELLED else None
        stored = await self._finisher.finish(
            batch_id, status, counts, reason, state["done"], counted
        )
        # Forgotten once final: later messages about the batch find its status in the store.
        self._table.pop(batch_id.encode(), None)
        return stored.status if stored is not None else status
