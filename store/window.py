"""Which slice of which chunk covers a window of a batch's items (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChunkSlice:
    """Items ``start:stop`` of the chunk ``chunk_index`` belong to the window."""

    chunk_index: int
    start: int
    stop: int


def plan_window(
    counts: Iterable[tuple[int, int]], offset: int, limit: int | None
) -> list[ChunkSlice]:
    """Slices, in chunk order, that together hold items ``offset`` to ``offset + limit``.

    ``counts`` are ``(chunk_index, item_count)`` pairs sorted by chunk index; chunks that fall
    wholly outside the window, or hold no items, are left out so they are never loaded.
    """
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0 or None")
    end = None if limit is None else offset + limit
    slices: list[ChunkSlice] = []
    position = 0  # index, within the whole batch, of the chunk's first item
    for chunk_index, count in counts:
        if end is not None and position >= end:
            break
        low = max(offset, position)
        high = position + count if end is None else min(end, position + count)
        if low < high:
            slices.append(ChunkSlice(chunk_index, low - position, high - position))
        position += count
    return slices
