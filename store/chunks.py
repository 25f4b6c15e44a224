"""SQL for the ``result_chunks`` table; each function runs inside a connection the caller manages.

Results and errors are stored as JSON text written by ``schemas.jsonio`` so that a
``Decimal("100.50")`` is read back with its scale; a JSON column type would go through floats.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, exists, func, select

from schemas import jsonio
from store.records import EncodedChunk
from store.tables import DIALECTS, batches, id_slices, insert_ignoring_conflicts, result_chunks

# Built once (see store.batches): the statements every chunk and every results read runs.
_PUT = {dialect: insert_ignoring_conflicts(result_chunks, dialect) for dialect in DIALECTS}


def _counts_of(column: str) -> Select[Any]:
    count_column = result_chunks.c[column]
    return (
        select(result_chunks.c.chunk_index, count_column)
        .where(result_chunks.c.batch_id == bindparam("id"), count_column > 0)
        .order_by(result_chunks.c.chunk_index)
    )


def _payloads_of(column: str) -> Select[Any]:
    return select(result_chunks.c.chunk_index, result_chunks.c[column]).where(
        result_chunks.c.batch_id == bindparam("id"),
        result_chunks.c.chunk_index.in_(bindparam("indexes", expanding=True)),
    )


_COUNTS = {column: _counts_of(column) for column in ("result_count", "error_count")}
_PAYLOADS = {column: _payloads_of(column) for column in ("results", "errors")}


def _error_row(error: dict[str, Any]) -> tuple[bool, int]:
    row = error.get("row")
    # Errors without a usable row number sort after the others instead of failing the write.
    return (False, row) if isinstance(row, int) else (True, 0)


def encode_chunk(
    batch_id: str,
    chunk_index: int,
    first_row: int,
    results: list[Any],
    errors: list[dict[str, Any]],
) -> EncodedChunk:
    return EncodedChunk(
        batch_id=batch_id,
        chunk_index=chunk_index,
        first_row=first_row,
        result_count=len(results),
        results_json=jsonio.dumps(results),
        error_count=len(errors),
        # Sorted by row here so that reading errors in row order needs no sort across chunks.
        errors_json=jsonio.dumps(sorted(errors, key=_error_row)),
    )


def _row_values(chunk: EncodedChunk, now: datetime) -> dict[str, Any]:
    return {
        "batch_id": chunk.batch_id,
        "chunk_index": chunk.chunk_index,
        "first_row": chunk.first_row,
        "result_count": chunk.result_count,
        "results": chunk.results_json.decode(),
        "errors": chunk.errors_json.decode(),
        "error_count": chunk.error_count,
        "created_at": now,
    }


def put(conn: Connection, chunk: EncodedChunk, now: datetime) -> bool:
    """Store a chunk once; ``False`` if it was already there (the stored copy is kept)."""
    stmt = insert_ignoring_conflicts(
        result_chunks, conn.dialect.name, _row_values(chunk, now)
    ).returning(result_chunks.c.chunk_index)
    return conn.execute(stmt).first() is not None


def put_many(conn: Connection, group: Sequence[EncodedChunk], now: datetime) -> None:
    """Store every chunk of a group that is not stored yet, in one executemany (a statement
    compiled once); stored copies are kept (chunks are never rewritten)."""
    if group:
        rows = [_row_values(chunk, now) for chunk in group]
        conn.execute(_PUT[conn.dialect.name], rows)


def indexes(conn: Connection, batch_id: str) -> set[int]:
    stmt = select(result_chunks.c.chunk_index).where(result_chunks.c.batch_id == batch_id)
    return set(conn.execute(stmt).scalars())


def count_results(conn: Connection, batch_id: str) -> int:
    stmt = select(func.coalesce(func.sum(result_chunks.c.result_count), 0)).where(
        result_chunks.c.batch_id == batch_id
    )
    return int(conn.execute(stmt).scalar_one())


def summaries(conn: Connection, batch_id: str) -> list[tuple[int, int, int]]:
    """``(first_row, result_count, error_count)`` of every stored chunk of a batch."""
    stmt = select(
        result_chunks.c.first_row, result_chunks.c.result_count, result_chunks.c.error_count
    ).where(result_chunks.c.batch_id == batch_id)
    return [(int(a), int(b), int(c)) for a, b, c in conn.execute(stmt).all()]


def counts(conn: Connection, batch_id: str, column: str) -> list[tuple[int, int]]:
    """``(chunk_index, count)`` in chunk order, where ``column`` is result_count or error_count."""
    rows = conn.execute(_COUNTS[column], {"id": batch_id}).all()
    return [(int(index), int(count)) for index, count in rows]


def payloads(
    conn: Connection, batch_id: str, chunk_indexes: Sequence[int], column: str
) -> dict[int, str]:
    """The JSON text of ``column`` (results or errors) of the named chunks, by chunk index."""
    rows = conn.execute(_PAYLOADS[column], {"id": batch_id, "indexes": list(chunk_indexes)})
    return {int(index): str(text) for index, text in rows.all()}


def delete_uncounted(conn: Connection, batch_id: str, counted: Collection[int]) -> None:
    """Drop the batch's stored chunks whose index is not in ``counted``."""
    stored = indexes(conn, batch_id)
    for index in sorted(stored - set(counted)):
        conn.execute(
            delete(result_chunks).where(
                result_chunks.c.batch_id == batch_id, result_chunks.c.chunk_index == index
            )
        )


def delete_for(conn: Connection, batch_ids: Sequence[str]) -> None:
    for ids in id_slices(batch_ids):
        conn.execute(delete(result_chunks).where(result_chunks.c.batch_id.in_(ids)))


def delete_orphans_before(conn: Connection, cutoff: datetime) -> None:
    """Drop old chunks whose batch is gone (written by a worker after the batch was deleted)."""
    has_batch = exists().where(batches.c.batch_id == result_chunks.c.batch_id)
    conn.execute(delete(result_chunks).where(result_chunks.c.created_at < cutoff, ~has_batch))
