"""Cutting a batch into chunk messages for the requests topic."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from schemas.events import ChunkEvent, OnInvalid


def chunk_count(total: int, batch_size: int) -> int:
    return max(1, math.ceil(total / batch_size))


def chunk_key(batch_id: str, chunk_index: int, parallel: bool) -> bytes:
    """``parallel: false`` keys every chunk by batch ID: one partition, chunks in order.
    Otherwise the chunk index joins the key so the chunks spread over partitions."""
    return (f"{batch_id}/{chunk_index}" if parallel else batch_id).encode()


def iter_chunks(
    *,
    batch_id: str,
    items: Sequence[Any],
    batch_size: int,
    parallel: bool,
    pipeline: str,
    on_invalid: OnInvalid,
    duplicate_rows: Collection[int] = (),
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every chunk message of a batch, in chunk order."""
    count = chunk_count(len(items), batch_size)
    for index in range(count):
        first_row = index * batch_size
        last_row = first_row + batch_size
        event = ChunkEvent(
            batch_id=batch_id,
            chunk_index=index,
            chunk_count=count,
            first_row=first_row,
            total=len(items),
            pipeline=pipeline,
            on_invalid=on_invalid,
            items=list(items[first_row:last_row]),
            # The API saw the whole batch, so duplicates across chunks are already marked;
            # an empty list (not None) tells the worker not to look again within the chunk.
            duplicate_rows=sorted(row for row in duplicate_rows if first_row <= row < last_row),
        )
        yield chunk_key(batch_id, index, parallel), event.to_bytes()
