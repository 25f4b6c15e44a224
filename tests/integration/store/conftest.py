"""One suite, two backends: every test taking ``store`` runs on SQLite and on PostgreSQL.

PostgreSQL tests each get a fresh schema (uuid name, dropped afterwards), so they see only their
own rows and can run next to each other and next to a development database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from store import ResultsStore
from tests.integration.store.builders import StoreTarget

POSTGRES_URL_ENV = "BATCHLINE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.fail(
            f"{POSTGRES_URL_ENV} is not set, so the PostgreSQL half of the store suite cannot run. "
            'Start the server and export the URL with `eval "$(bash scripts/services.sh)"`, '
            "or deselect these tests with -m 'not postgres'."
        )
    return url


async def _drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreTarget]:
    if request.param == "sqlite":
        # A directory that does not exist yet: the store must create it.
        yield StoreTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'results.db'}")
        return
    url = postgres_url()
    schema = f"test_{uuid.uuid4().hex}"
    try:
        yield StoreTarget("postgresql", url, schema)
    finally:
        await _drop_schema(url, schema)


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[ResultsStore]:
    opened = await store_target.connect()
    try:
        yield opened
    finally:
        await opened.close()
