"""Fixtures for tests that run Batchline's processes against the real services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.integration.stack import Stack, StackFactory, new_key, stack_env


async def _admin(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


@pytest.fixture
async def pg_store_url(postgres_url: str) -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    name = f"bl_{uuid.uuid4().hex[:16]}"
    admin = await _admin(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    admin = await _admin(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def make_stack(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[StackFactory]:
    """Builds a Stack on this test's own topics; every process it started is stopped after."""
    stacks: list[Stack] = []

    def build(store_url: str | None = None, **env: str) -> Stack:
        url = store_url or f"sqlite+aiosqlite:///{tmp_path / 'results.db'}"
        stack = Stack(
            env=stack_env(
                kafka=kafka_bootstrap,
                prefix=topic_prefix,
                store_url=url,
                data_dir=tmp_path / "data",
                **env,
            ),
            store_url=url,
            log_dir=tmp_path,
        )
        stack.api_key = new_key(url, f"test-{uuid.uuid4().hex[:8]}")
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()
