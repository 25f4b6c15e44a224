"""Test data builders and store targets for the store suite."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from store import NewBatch, ResultsStore

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """An aware UTC instant ``seconds`` after BASE_TIME."""
    return BASE_TIME + timedelta(seconds=seconds)


def new_batch(**overrides: Any) -> NewBatch:
    values: dict[str, Any] = {
        "batch_id": f"b_{uuid.uuid4().hex}",
        "owner_key_id": "key-a",
        "pipeline_ref": "default@1",
        "on_invalid": "skip",
        "total": 10,
        "chunk_count": 1,
        "batch_size": 10,
        "parallel": True,
        "created_at": BASE_TIME,
    }
    values.update(overrides)
    return NewBatch(**values)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """Where a test's store lives; ``connect`` opens another store on the same data."""

    backend: str
    url: str
    pg_schema: str | None = None

    async def connect(self) -> ResultsStore:
        return await ResultsStore.connect(self.url, pg_schema=self.pg_schema)
