"""The result cache of one field: a bounded LRU that switches itself off when it does not pay.

The LRU is functools' C implementation (the cheapest bounded LRU in CPython; it counts hits and
misses itself). Its key is the raw value alone because each compiled pipeline owns its caches: the
full key is in effect (spec digest, field, value). Only exact ``str`` and ``int`` values are looked
up, so values that compare equal but differ (``True`` and ``1``, ``1.0`` and ``1.00``) never meet.

A lookup that misses costs more than computing a cheap step, so on data whose values do not repeat
a cache makes the engine slower. After every slice of records the cache checks its hit ratio; below
``MIN_HIT_RATIO`` it sits out the next slices (1, 2, 4, ... up to ``MAX_SKIPPED_SLICES``), then
tries again, keeping its entries, so repetitive data turns it back on. Threads sharing a pipeline
may race on this on/off state; that changes only whether the cache is consulted, never a result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

SLICE_SIZE: Final = 512
MIN_HIT_RATIO: Final = 1 / 32
MIN_LOOKUPS: Final = 64
MAX_SKIPPED_SLICES: Final = 64


class AdaptiveCache:
    """A bounded LRU of one field's results, with the on/off policy described above."""

    __slots__ = ("_backoff", "_hits", "_misses", "_skip", "_used", "lookup")

    def __init__(self, compute: Callable[[Any], Any], size: int) -> None:
        self.lookup = functools.lru_cache(maxsize=size)(compute)
        self._skip = 0
        self._backoff = 0
        self._used = False
        self._hits = 0
        self._misses = 0

    def for_slice(self) -> Callable[[Any], Any] | None:
        """The cached callable for the next slice, or None when the cache sits this slice out."""
        if self._skip > 0:
            self._skip -= 1
            self._used = False
            return None
        self._used = True
        return self.lookup

    def current(self) -> Callable[[Any], Any] | None:
        """The cached callable if the cache is on right now; does not advance the policy."""
        return None if self._skip > 0 else self.lookup

    def review(self) -> None:
        """After a slice: keep the cache on, or back off when it hardly ever hit."""
        if not self._used:
            return
        info = self.lookup.cache_info()
        hits, misses = info.hits - self._hits, info.misses - self._misses
        if hits + misses < MIN_LOOKUPS:
            return  # too few lookups to judge; keep counting into the next slice
        self._hits, self._misses = info.hits, info.misses
        if hits < (hits + misses) * MIN_HIT_RATIO:
            self._backoff = min(max(1, self._backoff * 2), MAX_SKIPPED_SLICES)
            self._skip = self._backoff
        else:
            self._backoff = 0
