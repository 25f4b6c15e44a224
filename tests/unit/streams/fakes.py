"""In-memory stand-ins for the results store and the Kafka producer of the stream handlers.

Both record every call, so that a test can assert what a handler did (and did not) touch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from store import (
    ApiKeyRecord,
    BatchEnding,
    BatchRecord,
    EncodedChunk,
    NewBatch,
    StoredGroup,
    StoreError,
    StoreUnavailable,
)
from streams.outputs import Outgoing

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def new_batch(**overrides: Any) -> NewBatch:
    """An API batch (owner key set) of 10 items in 1 chunk, unless told otherwise."""
    values: dict[str, Any] = {
        "batch_id": "b-api",
        "owner_key_id": "key-a",
        "pipeline_ref": "default@1",
        "on_invalid": "reject",
        "total": 10,
        "chunk_count": 1,
        "batch_size": 10,
        "parallel": True,
        "created_at": BASE_TIME,
    }
    values.update(overrides)
    return NewBatch(**values)


def record_of(batch: NewBatch, **overrides: Any) -> BatchRecord:
    """The row the store writes for ``batch`` when it is inserted (queued, nothing counted)."""
    record = BatchRecord(
        batch_id=batch.batch_id,
        owner_key_id=batch.owner_key_id,
        status="queued",
        pipeline_ref=batch.pipeline_ref,
        on_invalid=batch.on_invalid,
        total=batch.total,
        chunk_count=batch.chunk_count,
        batch_size=batch.batch_size,
        parallel=batch.parallel,
        processed=0,
        filtered=0,
        invalid=0,
        created_at=batch.created_at,
        started_at=None,
        completed_at=None,
        duration=None,
        reason=None,
        idempotency_key=batch.idempotency_key,
        request_digest=batch.request_digest,
        metadata=dict(batch.metadata),
    )
    return dataclasses.replace(record, **overrides)


ChunkId = tuple[str, int]


@dataclass
class FakeStore:
    """The results store's batch and chunk methods the handlers use, in memory.

    ``calls`` names every call in order. Failures to inject: ``unavailable_puts`` (the next N
    ``put_chunk_group`` calls raise StoreUnavailable; -1 = every call), ``refused`` (a
    ``put_chunk_group`` holding one of these chunks raises StoreError).
    """

    batches: dict[str, BatchRecord] = field(default_factory=dict)
    chunks: dict[ChunkId, EncodedChunk] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    put_groups: list[list[ChunkId]] = field(default_factory=list)
    committed_groups: list[list[ChunkId]] = field(default_factory=list)
    ensured: list[NewBatch] = field(default_factory=list)
    progress_calls: list[list[tuple[str, int, int, int]]] = field(default_factory=list)
    finish_calls: list[tuple[str, str, int, int, int, str | None]] = field(default_factory=list)
    # What end_batch was told the counts include, by batch (None: not a cancel).
    counted_at_end: dict[str, set[int] | None] = field(default_factory=dict)
    unavailable_puts: int = 0
    refused: set[ChunkId] = field(default_factory=set)
    api_keys: list[ApiKeyRecord] = field(default_factory=list)

    def add(self, batch: NewBatch, **overrides: Any) -> BatchRecord:
        record = record_of(batch, **overrides)
        self.batches[batch.batch_id] = record
        return record

    def calls_to(self, name: str) -> int:
        return self.calls.count(name)

    # KeyLister (streams.owners)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        self.calls.append("list_api_keys")
        return list(self.api_keys)

    # ChunkStore

    async def get_batches(self, batch_ids: Collection[str]) -> dict[str, BatchRecord]:
        self.calls.append("get_batches")
        return {i: self.batches[i] for i in batch_ids if i in self.batches}

    async def ensure_batch(self, batch: NewBatch) -> BatchRecord:
        self.calls.append("ensure_batch")
        self.ensured.append(batch)
        if batch.batch_id not in self.batches:
            self.batches[batch.batch_id] = record_of(batch)
        return self.batches[batch.batch_id]

    async def put_chunk_group(
        self,
        group: Sequence[EncodedChunk],
        started: Collection[str],
        now: datetime,
        endings: Mapping[str, BatchEnding] | None = None,
    ) -> StoredGroup:
        self.calls.append("put_chunk_group")
        ids = [(chunk.batch_id, chunk.chunk_index) for chunk in group]
        self.put_groups.append(ids)
        if self.unavailable_puts:
            if self.unavailable_puts > 0:
                self.unavailable_puts -= 1
            raise StoreUnavailable("x")
        if self.refused.intersection(ids):
            raise StoreError("refused")
        # One transaction: nothing above wrote anything; from here on every write lands.
        for batch_id in started:
            found = self.batches.get(batch_id)
            if found is not None and not found.finished:
                self.batches[batch_id] = dataclasses.replace(
                    found,
                    status="processing",
                    started_at=found.started_at or max(now, found.created_at),
                )
        finished = {
            chunk.batch_id
            for chunk in group
            if chunk.batch_id in self.batches and self.batches[chunk.batch_id].finished
        }
        for chunk in group:
            if chunk.batch_id not in finished:
                self.chunks.setdefault((chunk.batch_id, chunk.chunk_index), chunk)
        ended = {}
        for batch_id, ending in sorted((endings or {}).items()):
            if batch_id not in finished and self._end(batch_id, ending, now):
                ended[batch_id] = self.batches[batch_id]
        self.committed_groups.append(ids)
        return StoredGroup(finished, ended)

    # ProgressStore and FinishingStore

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        self.calls.append("get_batch")
        return self.batches.get(batch_id)

    async def record_progress(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        self.calls.append("record_progress")
        self.progress_calls.append(list(counts))
        for batch_id, processed, filtered, invalid in counts:
            found = self.batches.get(batch_id)
            if found is not None and not found.finished:
                self.batches[batch_id] = dataclasses.replace(
                    found, processed=processed, filtered=filtered, invalid=invalid
                )

    async def finish_batch(
        self,
        batch_id: str,
        status: str,
        processed: int,
        filtered: int,
        invalid: int,
        completed_at: datetime,
        reason: str | None = None,
    ) -> bool:
        self.calls.append("finish_batch")
        ending = BatchEnding(status, (processed, filtered, invalid), reason)
        return self._end(batch_id, ending, completed_at)

    def _end(self, batch_id: str, ending: BatchEnding, completed_at: datetime) -> bool:
        processed, filtered, invalid = ending.counts
        self.finish_calls.append(
            (batch_id, ending.status, processed, filtered, invalid, ending.reason)
        )
        found = self.batches.get(batch_id)
        if found is None or found.finished:
            return False
        started_at = found.started_at or found.created_at
        self.batches[batch_id] = dataclasses.replace(
            found,
            status=ending.status,
            processed=processed,
            filtered=filtered,
            invalid=invalid,
            started_at=started_at,
            completed_at=completed_at,
            duration=(completed_at - started_at).total_seconds(),
            reason=ending.reason,
        )
        return True

    async def end_batch(
        self,
        batch_id: str,
        status: str,
        counts: tuple[int, int, int],
        completed_at: datetime,
        reason: str | None = None,
        counted_chunks: Collection[int] | None = None,
    ) -> tuple[bool, BatchRecord | None]:
        processed, filtered, invalid = counts
        self.counted_at_end[batch_id] = None if counted_chunks is None else set(counted_chunks)
        finished_now = await self.finish_batch(
            batch_id, status, processed, filtered, invalid, completed_at, reason
        )
        return finished_now, self.batches.get(batch_id)


@dataclass
class FakeOutputs:
    """Records every message sent; the first ``failures`` calls raise ``error()`` instead."""

    sent: list[Outgoing] = field(default_factory=list)
    send_calls: int = 0
    failures: int = 0
    error: Callable[[], Exception] = lambda: StoreUnavailable("x")

    async def send(self, messages: Sequence[Outgoing]) -> None:
        self.send_calls += 1
        if self.failures:
            self.failures -= 1
            raise self.error()
        self.sent.extend(messages)

    def on(self, topic: str) -> list[Outgoing]:
        return [message for message in self.sent if message.topic == topic]

    def everything(self) -> bytes:
        """Every key and value sent, joined: for asserting that a string appears nowhere."""
        return b"\n".join(part or b"" for m in self.sent for part in (m.key, m.value))
