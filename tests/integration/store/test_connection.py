"""Opening the store: URL checks, schema creation, SQLite settings, ping and outages."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from store import ResultsStore, StoreError, StoreUnavailable
from store.runner import open_runner
from store.tables import SCHEMA_VERSION, schema_version
from tests.integration.store.builders import StoreTarget


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_ping_is_true_for_an_open_store(store: ResultsStore) -> None:
    assert await store.ping() is True


async def test_ping_is_false_when_the_database_is_unreachable() -> None:
    url = f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{closed_port()}/none"
    store = ResultsStore(open_runner(url))
    try:
        assert await store.ping() is False
    finally:
        await store.close()


async def test_connecting_to_an_unreachable_database_says_what_to_check() -> None:
    url = f"postgresql+asyncpg://nobody:secret-pw@127.0.0.1:{closed_port()}/none"

    with pytest.raises(StoreUnavailable, match="BATCHLINE_STORE_URL") as raised:
        await ResultsStore.connect(url)

    assert "secret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("sqlite:///data/results.db", "sqlite+aiosqlite:///data/results.db"),
        ("postgresql://u:p@db/batchline", "postgresql+asyncpg://u:***@db/batchline"),
        ("postgresql+psycopg://u@db/batchline", "postgresql+asyncpg://u@db/batchline"),
        ("mysql+aiomysql://u@db/batchline", "sqlite+aiosqlite:///"),
        ("sqlite+aiosqlite://", "needs a file path"),
        ("sqlite+aiosqlite:///:memory:", "needs a file path"),
        ("not a url", "not a valid SQLAlchemy URL"),
    ],
)
async def test_unsupported_urls_are_refused_with_a_corrected_example(url: str, hint: str) -> None:
    with pytest.raises(StoreError) as raised:
        await ResultsStore.connect(url)

    assert hint in str(raised.value)


async def test_reconnecting_keeps_data_and_one_schema_version_row(
    store: ResultsStore, store_target: StoreTarget
) -> None:
    await store.put_chunk("b", 0, 0, [1], [])

    again = await store_target.connect()
    try:
        assert await again.count_results("b") == 1
        rows = await again._read(
            lambda conn: conn.execute(select(schema_version.c.version)).scalars().all()
        )
        assert rows == [SCHEMA_VERSION]
    finally:
        await again.close()


async def test_processes_starting_together_create_the_schema_once(
    store_target: StoreTarget,
) -> None:
    stores = await asyncio.gather(*(store_target.connect() for _ in range(4)))
    try:
        count = await stores[0]._read(
            lambda conn: conn.execute(select(func.count()).select_from(schema_version)).scalar()
        )
        assert count == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_a_newer_schema_version_is_refused_with_advice(
    store: ResultsStore, store_target: StoreTarget
) -> None:
    await store._write(
        lambda conn: conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    )

    with pytest.raises(StoreError, match="migrate"):
        await store_target.connect()


async def test_sqlite_store_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "results.db"

    store = await ResultsStore.connect(f"sqlite+aiosqlite:///{path}")
    await store.close()

    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


async def test_pg_schema_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="PostgreSQL only"):
        await ResultsStore.connect(f"sqlite+aiosqlite:///{tmp_path}/r.db", pg_schema="x")
