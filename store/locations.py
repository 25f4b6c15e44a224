"""SQL for ``chunk_locations``: where the API published each chunk on the requests topic."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, delete, select

from store.tables import chunk_locations, id_slices, insert_ignoring_conflicts

# Four bound parameters a row: stay far below SQLite's per-statement limit.
ROWS_PER_INSERT = 200


def record(conn: Connection, batch_id: str, locations: Sequence[tuple[int, int]]) -> None:
    """``locations[i]`` is (partition, offset) of chunk ``i``; recording twice changes nothing."""
    for start in range(0, len(locations), ROWS_PER_INSERT):
        rows = [
            {"batch_id": batch_id, "chunk_index": index, "partition": part, "offset": offset}
            for index, (part, offset) in enumerate(
                locations[start : start + ROWS_PER_INSERT], start
            )
        ]
        conn.execute(insert_ignoring_conflicts(chunk_locations, conn.dialect.name, rows))


def find(conn: Connection, batch_id: str, indexes: Collection[int]) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for wanted in id_slices(indexes):
        stmt = select(
            chunk_locations.c.chunk_index, chunk_locations.c.partition, chunk_locations.c.offset
        ).where(
            chunk_locations.c.batch_id == batch_id,
            chunk_locations.c.chunk_index.in_(wanted),
        )
        for index, part, offset in conn.execute(stmt).all():
            found[int(index)] = (int(part), int(offset))
    return found


def delete_for(conn: Connection, batch_ids: Sequence[str]) -> None:
    for ids in id_slices(batch_ids):
        conn.execute(delete(chunk_locations).where(chunk_locations.c.batch_id.in_(ids)))
