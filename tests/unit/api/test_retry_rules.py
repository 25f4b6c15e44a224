"""Which failed batches a retry runs again: those that failed for a reason outside their data."""

from __future__ import annotations

import pytest

from api.retry import retryable
from streams.admission import DEAD_LETTER_MESSAGES, DeadLetterCode
from streams.finishing import REJECTED_REASON
from streams.reconciler import NEVER_PUBLISHED_REASON, missing_chunks_reason
from tests.unit.streams.fakes import new_batch, record_of


def dead_lettered(code: DeadLetterCode) -> str:
    return f"Chunk 2 was dead-lettered ({code.value}): {DEAD_LETTER_MESSAGES[code]}"


@pytest.mark.parametrize(
    "code",
    [
        DeadLetterCode.GAVE_UP,
        DeadLetterCode.UNKNOWN_PIPELINE,
        DeadLetterCode.PIPELINE_FAILED,
        DeadLetterCode.STORE_REFUSED,
    ],
)
def test_a_batch_failed_by_a_chunk_dead_lettered_outside_its_data_is_retried(
    code: DeadLetterCode,
) -> None:
    assert retryable(record_of(new_batch(), status="failed", reason=dead_lettered(code)))


@pytest.mark.parametrize(
    "reason",
    [
        REJECTED_REASON,
        NEVER_PUBLISHED_REASON,
        "Kafka was unavailable at submission",
        missing_chunks_reason([1], 3, 600.0),
        None,
    ],
)
def test_a_batch_failed_on_its_data_or_without_input_is_not(reason: str | None) -> None:
    assert not retryable(record_of(new_batch(), status="failed", reason=reason))


def test_only_a_failed_batch_is_retried() -> None:
    reason = dead_lettered(DeadLetterCode.GAVE_UP)
    assert not retryable(record_of(new_batch(), status="completed", reason=reason))
