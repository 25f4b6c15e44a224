"""Where a unit of store work runs: one plain function over a synchronous connection, one hop.

Every store operation is a synchronous function of a ``sqlalchemy.Connection`` (the SQL modules
of this package), so both backends share one copy of each query; a runner runs it in one
transaction and hands back its result:

- SQLite: the whole transaction, from checkout to COMMIT, in one of a few threads of our own,
  so an operation costs one thread hop. Through SQLAlchemy's asyncio layer over aiosqlite each
  cursor(), execute(), fetch, BEGIN and COMMIT was a hop of its own to aiosqlite's thread:
  1-4 ms per operation for SQL that takes about 0.01 ms.
- PostgreSQL: asyncpg on the event loop, the function run through ``AsyncConnection.run_sync``.

A small operation (a few rows found by key: a batch, an API key, a chunk's results; a new batch,
a small group of chunks) may instead run on the event loop's own thread (``read_small``,
``write_small``). On SQLite a point read takes about 0.25 ms there, while the hop to a thread and
back took 0.5 ms on an idle machine and 1.5-2.5 ms on a busy one (the worker, the API and the
broker sharing 2 cores): a 1-item synchronous batch made seven such hops.

Cancellation: a task cancelled while its work runs in a SQLite thread stops waiting, and no
more; the work runs to its end in the thread and commits (or rolls back, if it raises) as if
nobody had left. Work not yet started when its caller is cancelled never starts. On PostgreSQL,
as before, cancellation interrupts the statement being awaited and the transaction rolls back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import (
    SQLITE_DRIVER,
    WRITE_OPTION,
    create_postgres_engine,
    create_sqlite_engine,
    enable_sqlite_wal,
    parse_store_url,
)
from store.errors import StoreError

T = TypeVar("T")
# Readers (the API's status and results queries) run side by side, and beside a commit: in WAL
# mode SQLite never blocks them.
SQLITE_READ_THREADS = 3


class Runner(Protocol):
    """Runs a store operation, a function of one connection, as one transaction."""

    url: URL
    """The URL as the user gave it (for error messages)."""

    async def prepare(self) -> None:
        """Once, before the first operation: set up the database file if the backend needs it."""

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a read transaction, rolled back at the end."""

    async def read_small(self, work: Callable[[Connection], T]) -> T:
        """:meth:`read` for work that reads a few rows by key, and nothing else: it may run
        on the calling thread, blocking the event loop for as long as it takes."""

    async def write(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a write transaction, committed unless ``work`` raises."""

    async def write_small(self, work: Callable[[Connection], T]) -> T:
        """:meth:`write` for work that writes a few rows: it may run on the calling thread,
        blocking the event loop for as long as it takes. ``work`` may run twice (the first
        attempt rolled back), so it must not act outside the connection."""

    async def close(self) -> None:
        """Close every pooled connection."""


def open_runner(url: str, *, pg_schema: str | None = None) -> Runner:
    """The runner for the backend ``url`` names; nothing connects until the first operation."""
    parsed = parse_store_url(url)
    if parsed.drivername == SQLITE_DRIVER:
        if pg_schema is not None:
            raise StoreError("pg_schema applies to PostgreSQL only; drop it for a SQLite store.")
        return SqliteRunner(parsed)
    return PostgresRunner(parsed, pg_schema=pg_schema)


def _in_connection(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return work(conn)


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    value: T


def _busy(error: OperationalError) -> bool:
    return "locked" in str(error.orig) or "busy" in str(error.orig)


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)


class SqliteRunner:
    """Each operation, transaction and all, in a thread of its own (one hop): reads in one of
    ``read_threads`` threads, writes in the one writer thread.

    SQLite takes one writer at a time. Writers of this process queue for the writer thread,
    in order, and reads never queue behind them. With writers in the readers' pool, two of ours
    would race for the write lock and the loser sleep in SQLite's busy handler (up to 100 ms a
    round) in a thread that reads wait for; measured with 8 writers and 8 readers at once, that
    doubled read latency and the writers' p99. Writers of other processes are still waited for
    with busy_timeout.
    """

    def __init__(self, url: URL, *, read_threads: int = SQLITE_READ_THREADS) -> None:
        self.url = url
        # One pooled connection per thread, none opened and closed around an operation.
        self._engine = create_sqlite_engine(url, pool_size=read_threads + 1)
        # Same pool; its transactions start with BEGIN IMMEDIATE (see store.engine).
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        # Small operations on the event loop's thread: a connection of their own, which never
        # waits for a lock (busy_timeout 0) nor runs a checkpoint. A reader in WAL mode meets a
        # lock only while another connection recovers or removes the WAL file; a writer whenever
        # another one writes. The operation is then done in a thread, as any other.
        self._inline = create_sqlite_engine(
            url, pool_size=1, busy_timeout_ms=0, per_thread=True, checkpoints=False
        )
        self._inline_writer = self._inline.execution_options(**{WRITE_OPTION: True})
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="batchline-sqlite")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="batchline-sqlite-writer")
        self._closed = False

    async def prepare(self) -> None:
        await self._in_thread(self._writes, lambda: enable_sqlite_wal(self._engine))

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._in_thread(self._readers, lambda: _in_connection(self._engine, work))

    async def read_small(self, work: Callable[[Connection], T]) -> T:
        inline = self._on_the_loop(lambda: _in_connection(self._inline, work))
        return inline.value if inline is not None else await self.read(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._in_thread(self._writes, lambda: _in_transaction(self._writer, work))

    async def write_small(self, work: Callable[[Connection], T]) -> T:
        inline = self._on_the_loop(lambda: _in_transaction(self._inline_writer, work))
        return inline.value if inline is not None else await self.write(work)

    def _on_the_loop(self, call: Callable[[], T]) -> _Done[T] | None:
        """``call()`` on this thread; None when SQLite met a lock (nothing was done, the
        transaction rolled back) or the store is closed: then the caller's thread does it."""
        if self._closed:
            return None
        try:
            return _Done(call())
        except OperationalError as error:
            if not _busy(error):
                raise
        return None

    async def close(self) -> None:
        self._closed = True
        # In a thread: shutdown waits for work already handed over (a cancelled caller's commit
        # among it), and closing the last connection checkpoints the WAL file.
        await asyncio.to_thread(self._shut_down)

    def _shut_down(self) -> None:
        self._readers.shutdown(wait=True)
        self._writes.shutdown(wait=True)
        self._inline.dispose()
        self._engine.dispose()

    def _in_thread(self, executor: ThreadPoolExecutor, call: Callable[[], T]) -> asyncio.Future[T]:
        # After close, like the disposed AsyncEngine this replaces, the engine connects again
        # (in the loop's default executor) rather than fail: a caller that outlives the store
        # during shutdown still gets its answer, not a RuntimeError from a shut-down executor.
        chosen = None if self._closed else executor
        return asyncio.get_running_loop().run_in_executor(chosen, call)


class PostgresRunner:
    """asyncpg on the event loop; the synchronous work runs through ``run_sync``."""

    def __init__(self, url: URL, *, pg_schema: str | None = None) -> None:
        self.url = url
        self._engine: AsyncEngine = create_postgres_engine(url, pg_schema=pg_schema)

    async def prepare(self) -> None:
        pass

    async def read(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(work)

    async def read_small(self, work: Callable[[Connection], T]) -> T:
        return await self.read(work)  # already on the event loop

    async def write(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    async def write_small(self, work: Callable[[Connection], T]) -> T:
        return await self.write(work)  # already on the event loop

    async def close(self) -> None:
        await self._engine.dispose()
