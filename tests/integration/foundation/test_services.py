"""The PostgreSQL and Redis servers the suite relies on answer over real connections."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url


@pytest.mark.postgres
async def test_postgresql_answers_a_query(postgres_url: str) -> None:
    url = make_url(postgres_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        assert await connection.fetchval("SELECT 40 + 2") == 42
    finally:
        await connection.close()


@pytest.mark.redis
async def test_redis_stores_and_returns_a_value(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await client.set("batchline:test:ping", "pong", ex=10)
        assert await client.get("batchline:test:ping") == b"pong"
    finally:
        await client.aclose()
