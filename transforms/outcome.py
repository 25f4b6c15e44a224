"""What running a pipeline over a chunk of records returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RowError:
    """A record that failed validation: its batch row, the output field, and why (no raw value)."""

    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The error as the API's ``details`` object."""
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class ChunkOutcome:
    """The kept outputs of a chunk with their rows, the filtered count and the invalid records."""

    results: list[dict[str, Any]] = field(default_factory=list)
    result_rows: list[int] = field(default_factory=list)
    filtered: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def processed(self) -> int:
        """How many records produced an output."""
        return len(self.results)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Cumulative hits and misses of the result caches, for metrics."""

    hits: int
    misses: int
