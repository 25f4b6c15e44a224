"""The reason a batch missing chunks fails with: numbers only, never producer text."""

from __future__ import annotations

from streams.reconciler import missing_chunks_reason


def test_one_missing_chunk_is_named() -> None:
    assert missing_chunks_reason({1}, 3, 600.0) == "Chunk 1 of 3 never arrived within 600 s"


def test_missing_chunks_are_named_in_order_and_many_are_cut_short() -> None:
    assert missing_chunks_reason({5, 2}, 6, 2.5) == "Chunks 2, 5 of 6 never arrived within 2.5 s"
    reason = missing_chunks_reason(set(range(100)), 100, 600.0)
    assert reason.startswith("Chunks 0, 1, 2,")
    assert " 19 and 80 more of 100 never arrived" in reason
