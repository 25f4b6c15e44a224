"""A separate writer process for the store suite: puts chunks 0..n-1 and prints how many it stored.

Run as ``python -m tests.integration.store.chunk_writer URL PG_SCHEMA BATCH_ID N``.
"""

from __future__ import annotations

import asyncio
import sys

from store import ResultsStore


async def write(url: str, pg_schema: str | None, batch_id: str, count: int) -> int:
    store = await ResultsStore.connect(url, pg_schema=pg_schema)
    try:
        stored = 0
        for index in range(count):
            items = [{"chunk": index, "item": i} for i in range(5)]
            stored += await store.put_chunk(batch_id, index, index * 5, items, [])
        return stored
    finally:
        await store.close()


if __name__ == "__main__":
    url, schema, batch_id, count = sys.argv[1:5]
    print(asyncio.run(write(url, schema or None, batch_id, int(count))))
