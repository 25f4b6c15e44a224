"""Counts of each stored chunk: items by chunk size, filtered = items - results."""

from __future__ import annotations

from datetime import UTC, datetime

from store import BatchRecord, StoredChunkCounts, stored_chunk_counts


def _batch(total: int, batch_size: int) -> BatchRecord:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    return BatchRecord(
        batch_id="b",
        owner_key_id=None,
        status="processing",
        pipeline_ref="default@1",
        on_invalid="skip",
        total=total,
        chunk_count=-(-total // batch_size),
        batch_size=batch_size,
        parallel=True,
        processed=0,
        filtered=0,
        invalid=0,
        created_at=at,
        started_at=at,
        completed_at=None,
        duration=None,
        reason=None,
        idempotency_key=None,
        request_digest=None,
        metadata={},
    )


def test_the_short_last_chunk_counts_only_its_own_items() -> None:
    # 25 items in chunks of 10: rows 0-9, 10-19 and the short 20-24.
    counts = stored_chunk_counts(_batch(25, 10), [(20, 4, 1), (0, 10, 0)])

    assert counts == [
        StoredChunkCounts(chunk_index=2, processed=4, filtered=1, invalid=1),
        StoredChunkCounts(chunk_index=0, processed=10, filtered=0, invalid=0),
    ]


def test_no_stored_chunk_counts_nothing() -> None:
    assert stored_chunk_counts(_batch(25, 10), []) == []
