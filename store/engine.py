"""URL checks and engine creation for the two supported backends.

SQLite (``sqlite+aiosqlite:///path``) is the embedded default that several worker processes and
the API share in development; PostgreSQL (``postgresql+asyncpg://...``) is the production store.
The SQLite URL keeps its aiosqlite scheme for users, but the store opens the file with the
synchronous sqlite3 driver and runs each transaction in a thread of its own (see store.runner).
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, SingletonThreadPool

from store.errors import StoreError

SQLITE_DRIVER = "sqlite+aiosqlite"
# What the store itself connects with for a sqlite+aiosqlite URL (see store.runner).
SQLITE_SYNC_DRIVER = "sqlite+pysqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
# Long enough to outwait another process's write transaction, short enough to surface a stuck one.
SQLITE_BUSY_TIMEOUT_MS = 15_000
WAL_RETRY_PAUSE_S = 0.05
POSTGRES_CONNECT_TIMEOUT_S = 10.0
# Execution option that turns a SQLite transaction into BEGIN IMMEDIATE (see _install_sqlite_hooks).
WRITE_OPTION = "batchline_write"

_PG_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def redacted(url: URL) -> str:
    """The URL as it may appear in logs and error messages (password hidden)."""
    return url.render_as_string(hide_password=True)


def parse_store_url(url: str) -> URL:
    """Check that ``url`` names a backend the store supports, or say how to write one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            "The results store URL is not a valid SQLAlchemy URL; use "
            "sqlite+aiosqlite:///data/results.db or postgresql+asyncpg://user:pass@host/db."
        ) from None
    name = parsed.drivername
    if name in (SQLITE_DRIVER, POSTGRES_DRIVER):
        if name == SQLITE_DRIVER and parsed.database in (None, "", ":memory:"):
            raise StoreError(
                "The SQLite results store needs a file path, e.g. "
                "sqlite+aiosqlite:///data/results.db; an in-memory database is not shared "
                "between connections or processes."
            )
        return parsed
    if name.startswith("sqlite"):
        hint = f"{SQLITE_DRIVER}:///{parsed.database or 'data/results.db'}"
    elif name.startswith(("postgres", "postgresql")):
        hint = redacted(parsed.set(drivername=POSTGRES_DRIVER))
    else:
        hint = "sqlite+aiosqlite:///data/results.db or postgresql+asyncpg://user:pass@host/db"
    raise StoreError(
        f"Unsupported results store URL scheme {name!r}: the store accepts only "
        f"{SQLITE_DRIVER} and {POSTGRES_DRIVER} URLs. Set BATCHLINE_STORE_URL to {hint}."
    )


def create_sqlite_engine(
    url: URL,
    *,
    pool_size: int,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    per_thread: bool = False,
    checkpoints: bool = True,
) -> Engine:
    """A synchronous (pysqlite) engine on the file that ``url`` (``sqlite+aiosqlite:///...``)
    names; nothing connects until the first query.

    The store's threads share its pool (see store.runner): for a file database SQLAlchemy uses
    a QueuePool and opens connections with check_same_thread=False, so a connection may be
    used by one thread after another. ``pool_size`` should be at least the number of threads,
    so that none of them waits for a connection or opens one to close it right after.

    ``per_thread``: one connection per calling thread (SingletonThreadPool) instead, for work
    run on the event loop's own thread, where waiting for a pooled connection would block it.
    ``checkpoints=False``: its commits never run SQLite's automatic WAL checkpoint (which copies
    pages and syncs the file), left to the other connections.
    """
    assert url.database is not None  # noqa: S101 - parse_store_url rejected None
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    sync_url = url.set(drivername=SQLITE_SYNC_DRIVER)
    if per_thread:
        engine = create_engine(sync_url, poolclass=SingletonThreadPool, pool_size=pool_size)
    else:
        engine = create_engine(sync_url, pool_size=pool_size)
    _install_sqlite_hooks(engine, busy_timeout_ms, checkpoints)
    return engine


def create_postgres_engine(url: URL, *, pg_schema: str | None = None) -> AsyncEngine:
    """An asyncpg engine for ``url``; nothing connects until the first query.

    ``pg_schema`` puts every table in that schema through ``search_path``, so tests and
    side-by-side deployments can share one database without seeing each other's rows.
    """
    connect_args: dict[str, Any] = {"timeout": POSTGRES_CONNECT_TIMEOUT_S}
    if pg_schema is not None:
        if not _PG_SCHEMA_NAME.match(pg_schema):
            raise StoreError(
                f"pg_schema {pg_schema!r} is not a plain lower-case identifier; "
                "use letters, digits and underscores only."
            )
        connect_args["server_settings"] = {"search_path": pg_schema}
    # pre_ping: a pooled connection may have died with a server restart since its last use.
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)


def enable_sqlite_wal(engine: Engine) -> None:
    """Switch the database file to WAL, which lets readers (the API) run while a worker commits.

    The mode is stored in the file, so this is needed once per database, not per connection.
    SQLite answers "database is locked" at once, without waiting for its busy timeout, when
    another process holds a lock during the switch, hence the retries here. Blocking: it runs
    in one of the store's threads.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    with engine.connect() as conn:
        # The raw driver connection: through SQLAlchemy the PRAGMA would run after our BEGIN,
        # and the journal mode cannot change inside a transaction.
        raw = conn.connection.driver_connection
        assert raw is not None  # noqa: S101 - a checked-out connection always has one
        while True:
            try:
                cursor = raw.execute("PRAGMA journal_mode = WAL")
                try:
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(WAL_RETRY_PAUSE_S)
                continue
            if row is None or str(row[0]).lower() != "wal":
                raise StoreError(
                    f"SQLite refused WAL mode (journal mode stays {row and row[0]!r}); keep the "
                    "database on a local disk, not a network share."
                )
            return


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int, checkpoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 driver (it would skip it for SELECT and DDL) so that
        # _on_begin decides how every transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # NORMAL is durable across application crashes in WAL mode, and much faster than FULL.
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for a lock held by
        # another process: SQLite answers SQLITE_BUSY at once, busy_timeout or not. Writers take
        # the write lock up front (and wait for it); readers stay deferred and never block.
        if conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
