"""SQL for ``chunk_locations``: where the API published each chunk on the requests topic."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from store.tables import chunk_locations, id_slices, insert_ignoring_conflicts

# Four bound parameters a row: stay far below SQLite's per-statement limit.
ROWS_PER_INSERT = 200


async def record(
    conn: AsyncConnection, batch_id: str, locations: Sequence[tuple[int, int]]
) -> None:
    """``locations[i]`` is (partition, offset) of chunk ``i``; recording twice changes nothing."""
    for start in range(0, len(locations), ROWS_PER_INSERT):
        rows = [
            {"batch_id": batch_id, "chunk_index": index, "partition": part, "offset": offset}
            for index, (part, offset) in enumerate(
                locations[start : start + ROWS_PER_INSERT], start
            )
        ]
        await conn.execute(insert_ignoring_conflicts(chunk_locations, conn.dialect.name, rows))


async def find(
    conn: AsyncConnection, batch_id: str, indexes: Collection[int]
) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for wanted in id_slices(indexes):
        stmt = select(
            chunk_locations.c.chunk_index, chunk_locations.c.partition, chunk_locations.c.offset
        ).where(
            chunk_locations.c.batch_id == batch_id,
            chunk_locations.c.chunk_index.in_(wanted),
        )
        for index, part, offset in (await conn.execute(stmt)).all():
            found[int(index)] = (int(part), int(offset))
    return found


async def delete_for(conn: AsyncConnection, batch_ids: Sequence[str]) -> None:
    for ids in id_slices(batch_ids):
        await conn.execute(delete(chunk_locations).where(chunk_locations.c.batch_id.in_(ids)))
