"""The transform handler: a group of requests-topic messages in, one decision per message out.

Per message the decision is explicit: transform it, skip it (its batch is already finished,
e.g. cancelled), or dead-letter it (it does not decode, fails admission, or fails for good).
Per group the effects are few: one store transaction for every transformed chunk, then one round
of sends (a result chunk per chunk, one progress message per batch, the dead letters), all in
flight at once. A batch of one chunk is ended in that same transaction and its final status
sent in that round (see streams.finishing): it needs no progress message. Every effect is
idempotent by (batch ID, chunk index), so a group delivered twice after a crash or rebalance is
stored and counted once.

``prepare`` (decode, admit, transform, encode) and ``apply`` (store, send) are separate so that
the consumer can prepare the next group while the previous group's writes are in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from schemas import jsonio
from schemas.events import (
    ChunkCounts,
    ChunkEvent,
    ChunkFailedEvent,
    ChunksDoneEvent,
    decode,
)
from schemas.statuses import BatchStatus
from store import (
    BatchEnding,
    BatchRecord,
    EncodedChunk,
    NewBatch,
    StoredGroup,
    StoreError,
    encode_chunk,
)
from streams.admission import (
    DeadLetterCode,
    check_chunk,
    implied_shape,
    producer_batch,
    shape_of,
    signature_required,
)
from streams.dead_letters import DeadLetter, SourceMessage, dead_letter_message
from streams.finishing import BatchFinisher, ending
from streams.outputs import Outgoing, Outputs
from streams.owners import OwnerDirectory, ProducerOwner, namespace_of
from streams.retry import GaveUp, retry_transient
from streams.signing import has_valid_signature
from streams.topics import TopicNames
from telemetry.metrics import Metrics
from transforms import PipelineRegistry, UnknownPipelineError

log = logging.getLogger(__name__)


class ChunkStore(Protocol):
    """The part of the results store the transform handler uses."""

    async def get_batches(self, batch_ids: Collection[str]) -> dict[str, BatchRecord]: ...

    async def ensure_batch(self, batch: NewBatch) -> BatchRecord: ...

    async def put_chunk_group(
        self,
        group: Sequence[EncodedChunk],
        started: Collection[str],
        now: datetime,
        endings: Mapping[str, BatchEnding] | None = None,
    ) -> StoredGroup: ...


@dataclass(frozen=True, slots=True)
class Transformed:
    position: int
    message: SourceMessage
    chunk: ChunkEvent
    batch: BatchRecord
    encoded: EncodedChunk
    counts: ChunkCounts


@dataclass(slots=True)
class PreparedGroup:
    transformed: list[Transformed] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Batches of one chunk found finished when their chunk came again: their final status is
    # repeated, in case the worker that ended them died before announcing it.
    announce: dict[str, BatchRecord] = field(default_factory=dict)
    # Batches this group ended (one chunk each), as stored.
    ended: dict[str, BatchRecord] = field(default_factory=dict)


def result_chunk_bytes(chunk: ChunkEvent, encoded: EncodedChunk) -> bytes:
    """The ResultChunkEvent of a chunk, assembled around the results and errors JSON the store
    gets, so that they are encoded once (equal to ``ResultChunkEvent(...).to_bytes()``).

    The head is formatted by hand: the batch ID matches ``BatchId`` (letters, digits and
    ``_.:-``), so it needs no escaping, and the other fields are integers.
    """
    head = (
        f'{{"schema_version":1,"batch_id":"{chunk.batch_id}","chunk_index":{chunk.chunk_index},'
        f'"chunk_count":{chunk.chunk_count},"first_row":{chunk.first_row},"results":'
    ).encode()
    return b"".join((head, encoded.results_json, b',"errors":', encoded.errors_json, b"}"))


class ChunkHandler:
    def __init__(
        self,
        *,
        store: ChunkStore,
        registry: PipelineRegistry,
        outputs: Outputs,
        finisher: BatchFinisher,
        metrics: Metrics,
        topics: TopicNames,
        secret: bytes,
        owners: OwnerDirectory,
    ) -> None:
        self._store = store
        self._finisher = finisher
        self._owners = owners
        self._registry = registry
        self._outputs = outputs
        self._metrics = metrics
        self._topics = topics
        self._secret = secret

    async def handle(self, messages: Sequence[SourceMessage]) -> list[str]:
        """Processes a group of messages; returns the decision for each, in order."""
        prepared = await self.prepare(messages)
        await self.apply(prepared)
        return prepared.decisions

    # prepare: decode, admit, transform, encode (CPU, and store reads only)

    async def prepare(self, messages: Sequence[SourceMessage]) -> PreparedGroup:
        group = PreparedGroup(decisions=[""] * len(messages))
        decoded: list[tuple[int, SourceMessage, ChunkEvent]] = []
        for position, message in enumerate(messages):
            try:
                decoded.append((position, message, decode(ChunkEvent, message.value)))
            except (jsonio.JSONDecodeError, ValidationError) as exc:
                # Fails nobody's batch: an undecodable message proves nothing about its key.
                code = (
                    DeadLetterCode.INVALID_CHUNK
                    if isinstance(exc, ValidationError)
                    else DeadLetterCode.UNDECODABLE
                )
                self._letter(group, DeadLetter(position, message, code, type(exc).__name__))
        batches = await self._lookup({chunk.batch_id for _, _, chunk in decoded})
        for position, message, chunk in decoded:
            batch = await self._admit(group, position, message, chunk, batches)
            if batch is None:
                continue
            if batch.finished:
                group.decisions[position] = "skipped"
                if batch.chunk_count == 1:
                    group.announce[batch.batch_id] = batch
                log.debug(
                    "chunk skipped",
                    extra=_log_fields(chunk, message, reason=batch.status),
                )
                continue
            self._transform(group, position, message, chunk, batch)
        return group

    async def _lookup(self, batch_ids: set[str]) -> dict[str, BatchRecord]:
        # Read once per group (one query, however many chunks), so that a cancel is noticed
        # by the next group; the store transaction checks again (see _put).
        if not batch_ids:
            return {}
        return await retry_transient("read batches", lambda: self._store.get_batches(batch_ids))

    async def _admit(
        self,
        group: PreparedGroup,
        position: int,
        message: SourceMessage,
        chunk: ChunkEvent,
        batches: dict[str, BatchRecord],
    ) -> BatchRecord | None:
        """The chunk's batch if the chunk may be processed; else dead-letters it (None)."""
        owner = await self._owner(message, chunk)
        if isinstance(owner, DeadLetterCode):
            self._refuse(group, position, message, chunk, owner)
            return None
        batch = batches.get(chunk.batch_id)
        if batch is None:
            if owner is None and self._signed(message, self._secret):
                self._refuse(group, position, message, chunk, DeadLetterCode.UNKNOWN_BATCH)
                return None
            shape = implied_shape(chunk)
            if isinstance(shape, DeadLetterCode):
                self._refuse(group, position, message, chunk, shape)
                return None
            # Straight from an event-driven producer: its first admitted chunk registers it.
            key_id = None if owner is None else owner.key_id
            new = producer_batch(chunk, shape, datetime.now(UTC), key_id, self._resolved(chunk))
            batch = await retry_transient("register batch", lambda: self._store.ensure_batch(new))
            batches[batch.batch_id] = batch
        elif (owner is not None and batch.owner_key_id != owner.key_id) or (
            signature_required(batch) and not self._signed(message, self._secret)
        ):
            self._refuse(group, position, message, chunk, DeadLetterCode.BAD_SIGNATURE)
            return None
        code = check_chunk(chunk, shape_of(batch))
        if code is not None:
            self._refuse(group, position, message, chunk, code)
            return None
        return batch

    def _resolved(self, chunk: ChunkEvent) -> str:
        """The exact version a producer's chunk names (``default`` -> ``default@1``), so that
        every chunk of its batch runs that one even if a newer version appears meanwhile; as
        given when no worker knows it (the chunk is then dead-lettered as unknown_pipeline)."""
        try:
            return self._registry.get_or_reload(chunk.pipeline).ref
        except UnknownPipelineError:
            return chunk.pipeline

    async def _owner(
        self, message: SourceMessage, chunk: ChunkEvent
    ) -> ProducerOwner | DeadLetterCode | None:
        """The key that owns a namespaced batch ID and signed this chunk, None for an ID
        without a namespace, or why the chunk is refused. On a producer's own ingest topic,
        only batch IDs of its namespace are admitted."""
        namespace = namespace_of(chunk.batch_id)
        ingest = self._topics.ingest_namespace(message.topic)
        if ingest is not None and namespace != ingest:
            return DeadLetterCode.WRONG_INGEST
        if namespace is None:
            return None
        owner = await retry_transient("read API keys", lambda: self._owners.find(namespace))
        if owner is None:
            return DeadLetterCode.UNKNOWN_OWNER
        if not self._signed(message, owner.secret):
            return DeadLetterCode.BAD_SIGNATURE
        return owner

    @staticmethod
    def _signed(message: SourceMessage, secret: bytes) -> bool:
        # Checked only where it decides something: a keyless producer batch needs none.
        return has_valid_signature(secret, message.key, message.value, message.headers)

    def _refuse(
        self,
        group: PreparedGroup,
        position: int,
        message: SourceMessage,
        chunk: ChunkEvent,
        code: DeadLetterCode,
    ) -> None:
        letter = DeadLetter.of_chunk(
            position, message, chunk, code, "ChunkRefused", fails_batch=False
        )
        self._letter(group, letter)

    def _transform(
        self,
        group: PreparedGroup,
        position: int,
        message: SourceMessage,
        chunk: ChunkEvent,
        batch: BatchRecord,
    ) -> None:
        try:
            # The batch's registered version: the API's, or the one its first chunk resolved to.
            pipeline = self._registry.get_or_reload(batch.pipeline_ref)
            outcome = pipeline.run(chunk.items, chunk.first_row, chunk.duplicate_rows)
            errors = [error.as_dict() for error in outcome.errors]
            encoded = encode_chunk(
                chunk.batch_id, chunk.chunk_index, chunk.first_row, outcome.results, errors
            )
        except Exception as exc:  # noqa: BLE001 - a chunk that breaks the engine is a dead letter
            code = (
                DeadLetterCode.UNKNOWN_PIPELINE
                if isinstance(exc, UnknownPipelineError)
                else DeadLetterCode.PIPELINE_FAILED
            )
            letter = DeadLetter.of_chunk(
                position, message, chunk, code, type(exc).__name__, fails_batch=True
            )
            self._letter(group, letter)
            return
        counts = ChunkCounts(
            chunk_index=chunk.chunk_index,
            processed=outcome.processed,
            filtered=outcome.filtered + len(errors),
            invalid=len(errors),
        )
        group.transformed.append(Transformed(position, message, chunk, batch, encoded, counts))
        group.decisions[position] = "transformed"

    def _letter(self, group: PreparedGroup, letter: DeadLetter) -> None:
        group.letters.append(letter)
        group.decisions[letter.position] = "dead-lettered"

    # apply: one store transaction, one round of sends

    async def apply(self, group: PreparedGroup) -> None:
        now = datetime.now(UTC)
        stored = await self._store_group(group)
        outgoing = [
            Outgoing(
                self._topics.results,
                item.chunk.batch_id.encode(),
                result_chunk_bytes(item.chunk, item.encoded),
            )
            for item in stored
        ]
        outgoing.extend(self._progress_messages(stored, now))
        outgoing.extend(self._status_messages(group))
        for letter in group.letters:
            outgoing.extend(self._dead_letter_messages(letter, now))
        if outgoing:
            await retry_transient("send outputs", lambda: self._outputs.send(outgoing))
        for batch in group.ended.values():
            self._finisher.observe_finished(batch)
        self._count(group, stored)

    async def _store_group(self, group: PreparedGroup) -> list[Transformed]:
        """Stores the group's chunks in one transaction. Should the store refuse the group, each
        chunk is tried on its own and the ones it refuses are dead-lettered."""
        items = group.transformed
        if not items:
            return []
        try:
            return self._skip_finished(group, items, await self._put(items, group.read_at))
        except (GaveUp, StoreError, ValueError, OverflowError) as exc:
            log.warning(
                "chunk group refused; storing its chunks one by one",
                extra={"error_type": type(exc).__name__, "chunks": len(items)},
            )
        kept = []
        for item in items:
            try:
                put = await self._put([item], group.read_at)
                kept.extend(self._skip_finished(group, [item], put))
            except (GaveUp, StoreError, ValueError, OverflowError) as exc:
                code = (
                    DeadLetterCode.GAVE_UP
                    if isinstance(exc, GaveUp)
                    else DeadLetterCode.STORE_REFUSED
                )
                letter = DeadLetter.of_chunk(
                    item.position,
                    item.message,
                    item.chunk,
                    code,
                    type(exc).__name__,
                    fails_batch=True,
                )
                self._letter(group, letter)
        return kept

    async def _put(self, items: Sequence[Transformed], now: datetime) -> StoredGroup:
        """Stores the chunks in one transaction, ending the batches of one chunk."""
        started = {item.batch.batch_id for item in items if item.batch.status == BatchStatus.QUEUED}
        encoded = [item.encoded for item in items]
        endings = {
            item.batch.batch_id: ending(item.batch.on_invalid, _counts(item.counts))
            for item in items
            if item.batch.chunk_count == 1
        }
        put = await retry_transient(
            "store chunk group",
            lambda: self._store.put_chunk_group(encoded, started, now, endings),
        )
        self._metrics.store_transactions.labels(kind="chunk_group").inc()
        return put

    def _skip_finished(
        self, group: PreparedGroup, items: Sequence[Transformed], put: StoredGroup
    ) -> list[Transformed]:
        """The items stored; those of a batch finished (cancelled) after the group was read
        were left out of the store, and are skipped: nothing of them is announced."""
        group.ended.update(put.ended)
        kept = []
        for item in items:
            if item.batch.batch_id in put.finished:
                group.decisions[item.position] = "skipped"
            else:
                kept.append(item)
        return kept

    def _progress_messages(self, stored: Sequence[Transformed], now: datetime) -> list[Outgoing]:
        """One ChunksDoneEvent per batch of the group, but for batches of one chunk: those end
        in the group's transaction (see _put)."""
        by_batch: dict[str, list[Transformed]] = {}
        for item in stored:
            if item.batch.chunk_count > 1:
                by_batch.setdefault(item.chunk.batch_id, []).append(item)
        messages = []
        for batch_id, items in by_batch.items():
            first = items[0].chunk
            event = ChunksDoneEvent(
                batch_id=batch_id,
                chunk_count=first.chunk_count,
                total=first.total,
                on_invalid=first.on_invalid,
                chunks=[item.counts for item in items],
                at=now,
            )
            messages.append(Outgoing(self._topics.progress, batch_id.encode(), event.to_bytes()))
        return messages

    def _status_messages(self, group: PreparedGroup) -> list[Outgoing]:
        """The final status of each batch the group ended, or found ended again."""
        found = [
            self._finisher.status_message(batch, chunks_done=batch.chunk_count)
            for batch in group.ended.values()
        ]
        found.extend(self._finisher.status_message(batch) for batch in group.announce.values())
        return [message for message in found if message is not None]

    def _dead_letter_messages(self, letter: DeadLetter, now: datetime) -> list[Outgoing]:
        messages = [dead_letter_message(letter, self._topics.dead_letters, self._metrics, now)]
        if letter.fails_batch and letter.batch_id is not None:
            failed = ChunkFailedEvent(
                batch_id=letter.batch_id,
                chunk_index=letter.chunk_index,
                reason=letter.batch_reason,
                at=now,
            )
            key = letter.batch_id.encode()
            messages.append(Outgoing(self._topics.progress, key, failed.to_bytes()))
        return messages

    def _count(self, group: PreparedGroup, stored: Sequence[Transformed]) -> None:
        if not stored:
            return
        metrics = self._metrics
        processed = sum(item.counts.processed for item in stored)
        filtered = sum(item.counts.filtered for item in stored)
        invalid = sum(item.counts.invalid for item in stored)
        metrics.processed.labels(stage="transformed").inc(processed)
        metrics.filtered.labels(stage="transformed").inc(filtered)
        if invalid:
            metrics.errors.labels(error_type="validation").inc(invalid)
        metrics.group_size.observe(len(stored))
        elapsed_s = time.perf_counter() - group.started
        chunk_duration = metrics.duration.labels(scope="chunk")
        for _ in stored:
            chunk_duration.observe(elapsed_s / len(stored))
        first = stored[0].message
        # One line a group would be most of what a busy worker prints: DEBUG (the metrics count).
        log.debug(
            "chunk group transformed",
            extra={
                "chunks": len(stored),
                "batches": len({item.chunk.batch_id for item in stored}),
                "source": first.where(),
                "processed": processed,
                "filtered": filtered,
                "duration_ms": round(elapsed_s * 1000, 3),
            },
        )


def _counts(counts: ChunkCounts) -> tuple[int, int, int]:
    return counts.processed, counts.filtered, counts.invalid


def _log_fields(chunk: ChunkEvent, message: SourceMessage, **more: object) -> dict[str, object]:
    return {
        "batch_id": chunk.batch_id,
        "chunk_index": chunk.chunk_index,
        "source": message.where(),
        **more,
    }
