"""Counts of a batch from its stored chunks: items by chunk size, filtered = items - results."""

from __future__ import annotations

from datetime import UTC, datetime

from store import BatchRecord, counts_from_chunks


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
    counts = counts_from_chunks(_batch(25, 10), [(20, 4, 1), (0, 10, 0)])

    assert (counts.items, counts.processed, counts.filtered, counts.invalid) == (15, 14, 1, 1)


def test_no_stored_chunk_counts_nothing() -> None:
    assert counts_from_chunks(_batch(25, 10), []).items == 0
