"""SQL for ``batch_replays``: which batch a replay re-ran."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from store.tables import batch_replays, id_slices, insert_ignoring_conflicts


def record(conn: Connection, batch_id: str, replay_of: str) -> None:
    values = {"batch_id": batch_id, "replay_of": replay_of}
    conn.execute(insert_ignoring_conflicts(batch_replays, conn.dialect.name, values))


def find(conn: Connection, batch_id: str) -> str | None:
    stmt = select(batch_replays.c.replay_of).where(batch_replays.c.batch_id == batch_id)
    found = conn.execute(stmt).scalar_one_or_none()
    return None if found is None else str(found)


def delete_for(conn: Connection, batch_ids: Sequence[str]) -> None:
    for ids in id_slices(batch_ids):
        conn.execute(delete(batch_replays).where(batch_replays.c.batch_id.in_(ids)))
