"""The results store: batches, their result chunks, and API keys, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, exc, text

from schemas import jsonio
from schemas.statuses import FINISHED, BatchStatus
from store import api_keys, batches, chunks, locations, replays
from store.engine import redacted
from store.errors import (
    BatchNotFound,
    DuplicateIdempotencyKey,
    StoreError,
    StoreUnavailable,
    TooManyUnfinished,
)
from store.records import (
    ApiKeyRecord,
    BatchEnding,
    BatchRecord,
    EncodedChunk,
    NewBatch,
    StoredGroup,
)
from store.runner import Runner, open_runner
from store.schema import ensure_schema
from store.window import plan_window

T = TypeVar("T")

# Chunks loaded per query while streaming results: a handful of chunks of at most a few
# hundred items each, never a whole 10,000-item batch.
CHUNKS_PER_READ = 4
# Payload reads of at most this many items in all run as small reads (see store.runner).
SMALL_READ_ITEMS = 1_000
# Chunk groups of at most this many encoded bytes are stored as small writes.
SMALL_WRITE_BYTES = 64 * 1024
# Chunk locations of batches of at most this many chunks are recorded as small writes.
SMALL_WRITE_ROWS = 100
PING_TIMEOUT_S = 5.0


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; pass e.g. datetime.now(UTC)")
    return value.astimezone(UTC)


def _raise_on_idempotency_clash(conn: Connection, batch: NewBatch) -> None:
    if batch.idempotency_key is not None:
        existing = batches.find_by_idempotency_key(conn, batch.owner_key_id, batch.idempotency_key)
        if existing is not None:
            raise DuplicateIdempotencyKey(existing)


def _require_finished(status: str) -> None:
    if status not in FINISHED:
        raise ValueError(f"status must be one of {sorted(FINISHED)}, not {status!r}")


def _start_of(batch: BatchRecord | None, now: datetime) -> datetime:
    """When a batch starts processing at ``now``: never before it was registered (a producer's
    batch is registered by the group whose reading began at ``now``)."""
    return now if batch is None else max(now, batch.created_at)


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


# SQLSTATE classes of a server that is away for now: connection exceptions, and operator
# intervention (a server shutting down or starting up, "cannot connect now").
_UNREACHABLE_SQLSTATES = ("08", "57P")


def _unreachable(error: exc.DBAPIError) -> bool:
    """Whether the driver error says the database is away (worth retrying), not that the
    statement was wrong. asyncpg's "the database system is shutting down" arrives as a plain
    DBAPIError, not an OperationalError."""
    if isinstance(error, exc.OperationalError | exc.InterfaceError) or error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES)


class ResultsStore:
    """One interface over both backends; create it with :meth:`connect`, end with :meth:`close`.

    Every operation is one synchronous function over one connection (the SQL modules of this
    package), handed whole to the backend's runner: see store.runner. Collections passed in are
    copied first, as on SQLite the work reads them in a thread while other tasks run.
    """

    def __init__(self, runner: Runner) -> None:
        """Wrap ``runner`` without touching the database (see :meth:`connect`)."""
        self._runner = runner
        self._where = redacted(runner.url)

    @classmethod
    async def connect(cls, url: str, *, pg_schema: str | None = None) -> ResultsStore:
        """Open the store at ``url`` and create its tables if they are missing."""
        store = cls(open_runner(url, pg_schema=pg_schema))
        try:
            async with store._translate_errors():
                await store._runner.prepare()
            await store._write(partial(ensure_schema, pg_schema=pg_schema))
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        await self._runner.close()

    async def ping(self) -> bool:
        """True if the database answers ``SELECT 1``; never raises."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._runner.read(_select_one)
        except Exception:
            return False
        return True

    async def _read(self, work: Callable[[Connection], T]) -> T:
        async with self._translate_errors():
            return await self._runner.read(work)

    async def _read_small(self, work: Callable[[Connection], T]) -> T:
        """A read of a few rows by key (see Runner.read_small)."""
        async with self._translate_errors():
            return await self._runner.read_small(work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        async with self._translate_errors():
            return await self._runner.write(work)

    async def _write_small(self, work: Callable[[Connection], T]) -> T:
        """A write of a few rows (see Runner.write_small)."""
        async with self._translate_errors():
            return await self._runner.write_small(work)

    @asynccontextmanager
    async def _translate_errors(self) -> AsyncIterator[None]:
        # Driver errors raised in a SQLite thread reach the await unchanged, so this one
        # translation serves both backends.
        where = self._where
        try:
            yield
        except exc.IntegrityError as error:
            raise StoreError(
                f"The results store at {where} refused a write that conflicts with a stored row "
                f"({type(error.orig).__name__}); retry with fresh ids."
            ) from error
        except exc.DBAPIError as error:
            if not _unreachable(error):
                raise
            raise self._unavailable(error.orig or error) from error
        except (OSError, TimeoutError) as error:
            raise self._unavailable(error) from error

    def _unavailable(self, cause: BaseException) -> StoreUnavailable:
        # The driver's own message only: SQLAlchemy's str() would add SQL and parameters.
        return StoreUnavailable(
            f"The results store at {self._where} is unreachable or locked "
            f"({type(cause).__name__}: {cause}). Check BATCHLINE_STORE_URL and that the "
            "database is running; `bash scripts/services.sh` starts PostgreSQL locally."
        )

    # batches

    async def insert_batch(
        self, batch: NewBatch, *, max_unfinished: int | None = None
    ) -> BatchRecord:
        """Record a new batch as queued; a reused idempotency key raises with the existing batch.

        With ``max_unfinished``, the owner's unfinished batches are counted in the same
        transaction (serialised per owner) and TooManyUnfinished is raised when there is no room.
        """
        _aware(batch.created_at, "created_at")

        def admit(conn: Connection) -> BatchRecord | None:
            if max_unfinished is not None:
                batches.lock_owner(conn, batch.owner_key_id)
                _raise_on_idempotency_clash(conn, batch)
                unfinished = batches.count_unfinished(conn, batch.owner_key_id)
                if unfinished >= max_unfinished:
                    raise TooManyUnfinished(batch.owner_key_id, max_unfinished)
            record = batches.insert(conn, batch)
            if record is None:
                _raise_on_idempotency_clash(conn, batch)
            return record

        record = await self._write_small(admit)
        if record is not None:
            return record
        raise StoreError(f"Batch id {batch.batch_id} is already taken; generate a new batch id.")

    async def ensure_batch(self, batch: NewBatch) -> BatchRecord:
        """The batch with ``batch.batch_id``, inserted as queued first if it is not stored yet.

        For chunks that reach a worker straight from a producer, without the API having
        registered their batch: every worker holding one of its chunks may call this at once.
        """
        _aware(batch.created_at, "created_at")

        def insert_or_get(conn: Connection) -> BatchRecord | None:
            record = batches.insert(conn, batch) or batches.get(conn, batch.batch_id)
            if record is None:
                _raise_on_idempotency_clash(conn, batch)
            return record

        record = await self._write(insert_or_get)
        if record is not None:
            return record
        raise StoreError(f"Batch {batch.batch_id} could not be stored; retry.")

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        return await self._read_small(lambda conn: batches.get(conn, batch_id))

    async def get_batch_and_results(
        self, batch_id: str
    ) -> tuple[BatchRecord | None, list[Any] | None]:
        """The batch and, when it completed with at most SMALL_READ_ITEMS results, all of them
        in item order, in one small read; else None for the results (see :meth:`iter_results`).
        """

        def read(conn: Connection) -> tuple[BatchRecord | None, list[str] | None]:
            batch = batches.get(conn, batch_id)
            if (
                batch is None
                or batch.status != BatchStatus.COMPLETED
                or batch.processed > SMALL_READ_ITEMS
            ):
                return batch, None
            indexes = [index for index, _ in chunks.counts(conn, batch_id, "result_count")]
            texts = chunks.payloads(conn, batch_id, indexes, "results")
            return batch, [texts[index] for index in indexes]

        batch, texts = await self._read_small(read)
        if texts is None:
            return batch, None
        return batch, [item for text in texts for item in jsonio.loads(text)]

    async def get_batches(self, batch_ids: Collection[str]) -> dict[str, BatchRecord]:
        """The stored batches among ``batch_ids``, by ID (one query)."""
        ids = list(batch_ids)
        return await self._read_small(lambda conn: batches.get_many(conn, ids))

    async def record_progress(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        """Live counts ``(batch_id, processed, filtered, invalid)`` of running batches, in one
        transaction: a projection of the workers' progress table; finished batches are left
        as they are."""
        if not counts:
            return
        rows = list(counts)

        def record(conn: Connection) -> None:
            for batch_id, processed, filtered, invalid in rows:
                batches.record_progress(conn, batch_id, processed, filtered, invalid)

        await self._write(record)

    async def find_by_idempotency_key(
        self, owner_key_id: str | None, key: str
    ) -> BatchRecord | None:
        return await self._read(
            lambda conn: batches.find_by_idempotency_key(conn, owner_key_id, key)
        )

    async def list_batches(
        self, owner_key_id: str | None, offset: int, limit: int, status: str | None = None
    ) -> tuple[list[BatchRecord], int]:
        """One page of batches, newest first, and how many there are in all (owner None = all;
        status None = any status)."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must be >= 0")
        return await self._read(
            lambda conn: batches.page(conn, owner_key_id, offset, limit, status)
        )

    async def count_unfinished(self, owner_key_id: str | None) -> int:
        """Batches queued or processing (owner None = everybody's)."""
        return await self._read(lambda conn: batches.count_unfinished(conn, owner_key_id))

    async def mark_processing(self, batch_id: str, started_at: datetime) -> None:
        """Queued -> processing, keeping the first ``started_at``.

        A finished or missing batch is left alone without an error: workers call this inside a
        retry loop, and a batch deleted meanwhile must not make them retry for ever.
        """
        started_at = _aware(started_at, "started_at")
        await self._write(lambda conn: batches.mark_processing(conn, batch_id, started_at))

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
        """Finish an unfinished batch once; False (nothing changed) if it was already finished.

        Also False for a batch that does not exist (deleted or purged meanwhile), for the same
        reason as :meth:`mark_processing`.
        """
        finished_now, _ = await self.end_batch(
            batch_id, status, (processed, filtered, invalid), completed_at, reason
        )
        return finished_now

    async def end_batch(
        self,
        batch_id: str,
        status: str,
        counts: tuple[int, int, int],
        completed_at: datetime,
        reason: str | None = None,
        counted_chunks: Collection[int] | None = None,
    ) -> tuple[bool, BatchRecord | None]:
        """:meth:`finish_batch`, also returning the batch as stored afterwards (its first
        ending, whoever made it), read in the same transaction.

        With ``counted_chunks`` (a cancel), the stored chunks outside it are deleted in the same
        transaction when this call ends the batch: stored but never counted, they would make
        the results disagree with the counts."""
        _require_finished(status)
        completed_at = _aware(completed_at, "completed_at")

        def end(conn: Connection) -> tuple[bool, BatchRecord | None]:
            current = batches.get(conn, batch_id)
            if current is None or current.finished:
                return False, current
            ended = batches.finish(conn, current, status, counts, completed_at, reason)
            if ended is not None and counted_chunks is not None:
                chunks.delete_uncounted(conn, batch_id, counted_chunks)
            return ended is not None, ended or batches.get(conn, batch_id)

        return await self._write(end)

    async def abandon_batch(self, batch_id: str, reason: str) -> None:
        """Mark a batch that could not be published failed, and free its idempotency key.

        Not deleted: chunks that did reach Kafka must find a finished batch and be skipped,
        rather than register it afresh as a producer's batch.
        """
        await self._write(lambda conn: batches.abandon(conn, batch_id, reason, datetime.now(UTC)))

    async def stalled_batches(self, cutoff: datetime, limit: int = 100) -> list[BatchRecord]:
        """Unfinished batches that show no progress (creation, start, stored chunk) since
        ``cutoff``, oldest first: candidates for the worker's reconciler."""
        cutoff = _aware(cutoff, "cutoff")
        return await self._read(lambda conn: batches.stalled(conn, cutoff, limit))

    async def record_chunk_locations(
        self, batch_id: str, chunk_offsets: list[tuple[int, int]]
    ) -> None:
        """Where each chunk sits on the requests topic: ``chunk_offsets[i]`` = (partition,
        offset) of chunk ``i``."""
        offsets = list(chunk_offsets)
        record = partial(locations.record, batch_id=batch_id, locations=offsets)
        await (
            self._write_small(record) if len(offsets) <= SMALL_WRITE_ROWS else self._write(record)
        )

    async def chunk_locations(
        self, batch_id: str, indexes: Collection[int]
    ) -> dict[int, tuple[int, int]]:
        """(partition, offset) of the given chunks, for those whose location was recorded."""
        wanted = list(indexes)
        return await self._read(lambda conn: locations.find(conn, batch_id, wanted))

    async def reopen_batch(self, batch_id: str, reason: str) -> bool:
        """Failed with ``reason`` -> processing again, for a retry; False if it changed."""
        return await self._write(lambda conn: batches.reopen(conn, batch_id, reason))

    async def record_replay(self, batch_id: str, replay_of: str) -> None:
        """Notes that ``batch_id`` re-runs the input of ``replay_of``."""
        await self._write(lambda conn: replays.record(conn, batch_id, replay_of))

    async def replay_of(self, batch_id: str) -> str | None:
        """The batch ``batch_id`` replays, if it is a replay."""
        return await self._read(lambda conn: replays.find(conn, batch_id))

    async def delete_batch(self, batch_id: str) -> None:
        """Remove a batch and its chunks (no error if it is already gone)."""

        def delete(conn: Connection) -> None:
            chunks.delete_for(conn, [batch_id])
            locations.delete_for(conn, [batch_id])
            replays.delete_for(conn, [batch_id])
            batches.delete_one(conn, batch_id)

        await self._write(delete)

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete finished batches that ended before ``cutoff`` with their chunks; how many."""
        cutoff = _aware(cutoff, "cutoff")

        def purge(conn: Connection) -> int:
            purged = batches.delete_finished_before(conn, cutoff)
            chunks.delete_for(conn, purged)
            locations.delete_for(conn, purged)
            replays.delete_for(conn, purged)
            chunks.delete_orphans_before(conn, cutoff)
            return len(purged)

        return await self._write(purge)

    # results

    async def put_chunk(
        self,
        batch_id: str,
        chunk_index: int,
        first_row: int,
        results: list[Any],
        errors: list[dict[str, Any]],
    ) -> bool:
        """Store a chunk's results once: True the first time, False (nothing changed) after."""
        chunk = chunks.encode_chunk(batch_id, chunk_index, first_row, results, errors)
        return await self._write(lambda conn: chunks.put(conn, chunk, datetime.now(UTC)))

    async def put_chunk_group(
        self,
        group: Sequence[EncodedChunk],
        started: Collection[str],
        now: datetime,
        endings: Mapping[str, BatchEnding] | None = None,
    ) -> StoredGroup:
        """One transaction for a group of transformed chunks: the batches in ``started`` go
        from queued to processing (keeping the first start), then every chunk not stored yet
        is stored; stored copies are kept, so a group delivered twice changes nothing. Last,
        each batch in ``endings`` (whose last chunk the group holds) ends as it says, unless it
        was finished before.

        Chunks of a batch that is finished (cancelled, say) by the time the transaction runs
        are not stored: their batch IDs are returned, so that nothing of them is announced.
        """
        now = _aware(now, "now")
        chunk_list, started_ids = list(group), set(started)
        ending_list = sorted((endings or {}).items())
        for _, ending in ending_list:
            _require_finished(ending.status)

        def put(conn: Connection) -> StoredGroup:
            stored = batches.get_many(conn, {chunk.batch_id for chunk in chunk_list})
            finished = {batch_id for batch_id, batch in stored.items() if batch.finished}
            for batch_id in sorted(started_ids - finished):
                batches.mark_processing(conn, batch_id, _start_of(stored.get(batch_id), now))
            chunks.put_many(conn, [c for c in chunk_list if c.batch_id not in finished], now)
            ended = {}
            completed_at = datetime.now(UTC)
            for batch_id, ending in ending_list:
                current = None if batch_id in finished else stored.get(batch_id)
                if current is None:
                    continue
                # As mark_processing left it, without reading it again.
                started_at = current.started_at or _start_of(current, now)
                current = replace(current, started_at=started_at)
                record = batches.finish(
                    conn, current, ending.status, ending.counts, completed_at, ending.reason
                )
                if record is not None:
                    ended[batch_id] = record
            return StoredGroup(finished, ended)

        size = sum(len(chunk.results_json) + len(chunk.errors_json) for chunk in chunk_list)
        return await (self._write_small(put) if size <= SMALL_WRITE_BYTES else self._write(put))

    async def chunk_indexes(self, batch_id: str) -> set[int]:
        return await self._read(lambda conn: chunks.indexes(conn, batch_id))

    async def chunk_summaries(self, batch_id: str) -> list[tuple[int, int, int]]:
        """``(first_row, result_count, error_count)`` per stored chunk (for the reconciler)."""
        return await self._read(lambda conn: chunks.summaries(conn, batch_id))

    async def count_results(self, batch_id: str) -> int:
        return await self._read(lambda conn: chunks.count_results(conn, batch_id))

    async def iter_results(
        self, batch_id: str, offset: int = 0, limit: int | None = None
    ) -> AsyncIterator[Any]:
        """Results in item order, skipping ``offset`` and yielding at most ``limit``.

        No connection is held while the caller consumes items, so a slow HTTP client pins
        neither a pool slot nor (on SQLite) an old WAL snapshot.
        """
        async for items in self._window(batch_id, "result_count", "results", offset, limit):
            for item in items:
                yield item

    async def list_errors(
        self, batch_id: str, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of per-row errors in row order, and how many there are in all."""
        counts = await self._read(lambda conn: chunks.counts(conn, batch_id, "error_count"))
        total = sum(count for _, count in counts)
        page: list[dict[str, Any]] = []
        async for errors in self._window(batch_id, "error_count", "errors", offset, limit):
            page.extend(errors)
        return page, total

    async def _window(
        self, batch_id: str, count_column: str, payload_column: str, offset: int, limit: int | None
    ) -> AsyncIterator[list[Any]]:
        # Only the small (chunk_index, count) list is read whole; payloads follow a few at a
        # time, each read its own transaction, none open while the caller consumes.
        # Two integers a chunk: even a 10,000-chunk batch reads in a few ms, most of which a
        # thread would spend holding the GIL anyway.
        counts = await self._read_small(lambda conn: chunks.counts(conn, batch_id, count_column))
        sizes = dict(counts)
        plan = plan_window(counts, offset, limit)
        for start in range(0, len(plan), CHUNKS_PER_READ):
            group = plan[start : start + CHUNKS_PER_READ]
            indexes = [piece.chunk_index for piece in group]
            read = partial(
                chunks.payloads, batch_id=batch_id, chunk_indexes=indexes, column=payload_column
            )
            small = sum(sizes[index] for index in indexes) <= SMALL_READ_ITEMS
            texts = await (self._read_small(read) if small else self._read(read))
            for piece in group:
                if piece.chunk_index not in texts:
                    # Chunks are never rewritten, only deleted with their batch.
                    raise BatchNotFound(batch_id)
                items = jsonio.loads(texts.pop(piece.chunk_index))
                yield items[piece.start : piece.stop]

    # api keys

    async def create_api_key(self, name: str, key_hash: str) -> ApiKeyRecord:
        """Store a new key by the sha256 of its secret; the name must be unused."""

        def create(conn: Connection) -> ApiKeyRecord | None:
            record = api_keys.insert(conn, name, key_hash, datetime.now(UTC))
            if record is None and api_keys.name_exists(conn, name):
                raise StoreError(f"An API key named {name!r} already exists; choose another name.")
            return record

        record = await self._write(create)
        if record is not None:
            return record
        raise StoreError("That API key secret is already registered; generate a new secret.")

    async def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The active (not revoked) key with this hash."""
        return await self._read_small(lambda conn: api_keys.find_active(conn, key_hash))

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        return await self._read(api_keys.all_keys)

    async def revoke_api_key(self, name_or_id: str) -> bool:
        """Revoke by key id or name; False if there is no such active key."""
        return await self._write(lambda conn: api_keys.revoke(conn, name_or_id, datetime.now(UTC)))
