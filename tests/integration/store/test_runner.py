"""How operations run: whole in a thread of the store (SQLite), errors translated, cancellation,
calls after close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert

from store import EncodedChunk, ResultsStore, StoreError, StoreUnavailable, chunks
from store.tables import api_keys

WAIT_S = 10.0


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'results.db'}"


async def test_sqlite_work_runs_in_the_store_threads_not_on_the_event_loop(
    tmp_path: Path,
) -> None:
    store = await ResultsStore.connect(sqlite_url(tmp_path))
    try:
        read_in = await store._read(lambda _conn: threading.current_thread().name)
        written_in = await store._write(lambda _conn: threading.current_thread().name)
    finally:
        await store.close()

    assert read_in.startswith("batchline-sqlite")
    assert written_in.startswith("batchline-sqlite-writer")


async def test_a_sqlite_write_whose_caller_is_cancelled_still_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await ResultsStore.connect(sqlite_url(tmp_path))
    started, release = threading.Event(), threading.Event()
    original = chunks.put

    def held_put(conn: Connection, chunk: EncodedChunk, now: datetime) -> bool:
        started.set()
        release.wait(WAIT_S)
        return original(conn, chunk, now)

    monkeypatch.setattr(chunks, "put", held_put)
    try:
        put = asyncio.create_task(store.put_chunk("b", 0, 0, ["kept"], []))
        assert await asyncio.to_thread(started.wait, WAIT_S)
        put.cancel()
        with pytest.raises(asyncio.CancelledError):
            await put
    finally:
        release.set()
        await store.close()  # waits for the work already in the thread

    reopened = await ResultsStore.connect(sqlite_url(tmp_path))
    try:
        assert await reopened.count_results("b") == 1
    finally:
        await reopened.close()


async def test_a_driver_error_in_the_work_becomes_a_store_error_without_sql_or_values(
    store: ResultsStore,
) -> None:
    secret_hash = f"hash-{uuid.uuid4().hex}"
    await store.create_api_key("first", secret_hash)
    clash = {
        "key_id": "k2",
        "name": "second",
        "key_hash": secret_hash,
        "created_at": datetime.now(UTC),
        "revoked_at": None,
    }

    with pytest.raises(StoreError, match="refused a write") as raised:
        await store._write(lambda conn: conn.execute(insert(api_keys).values(clash)))

    assert type(raised.value) is StoreError
    assert secret_hash not in str(raised.value)
    assert "INSERT" not in str(raised.value)


async def test_a_sqlite_file_that_cannot_be_opened_is_reported_unavailable(
    tmp_path: Path,
) -> None:
    (tmp_path / "results.db").mkdir()  # a directory where the database file should be

    with pytest.raises(StoreUnavailable, match="BATCHLINE_STORE_URL"):
        await ResultsStore.connect(sqlite_url(tmp_path))


async def test_a_call_that_outlives_close_still_gets_its_answer(store: ResultsStore) -> None:
    # A straggler during shutdown (an agent stopped after the store) must not fail oddly.
    await store.put_chunk("b", 0, 0, ["x"], [])
    await store.close()

    assert await store.count_results("b") == 1


async def test_small_sqlite_work_runs_on_the_event_loop_thread(tmp_path: Path) -> None:
    store = await ResultsStore.connect(sqlite_url(tmp_path))
    try:
        read_in = await store._read_small(lambda _conn: threading.current_thread().name)
        written_in = await store._write_small(lambda _conn: threading.current_thread().name)
    finally:
        await store.close()

    assert read_in == written_in == threading.current_thread().name


async def test_a_small_write_meeting_another_writer_waits_in_the_writer_thread(
    tmp_path: Path,
) -> None:
    """Another process holds SQLite's write lock: the small write does not block the event
    loop on it (busy_timeout 0 there) but queues in the writer thread, which waits for it."""
    store = await ResultsStore.connect(sqlite_url(tmp_path))
    holder = sqlite3.connect(tmp_path / "results.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        threads: list[str] = []

        def note_thread(_conn: Connection) -> str:
            threads.append(threading.current_thread().name)
            return threading.current_thread().name

        write = asyncio.create_task(store._write_small(note_thread))
        ticks = 0
        while not write.done() and ticks < 20:  # the loop keeps running meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not write.done()
        holder.execute("COMMIT")
        done_in = await asyncio.wait_for(write, WAIT_S)
    finally:
        holder.close()
        await store.close()

    assert done_in.startswith("batchline-sqlite-writer")
    assert threads == [done_in]  # the attempt on the loop stopped at BEGIN IMMEDIATE
