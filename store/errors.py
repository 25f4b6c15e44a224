"""Errors of the results store: one root, typed subclasses, messages that say what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.records import BatchRecord


class StoreError(Exception):
    """Root of every error the results store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or stayed locked longer than the busy timeout."""


class DuplicateIdempotencyKey(StoreError):
    """A batch with the same (owner, idempotency key) exists; ``existing`` is that batch."""

    def __init__(self, existing: BatchRecord) -> None:
        super().__init__(
            f"Idempotency key already used by batch {existing.batch_id}; "
            "return that batch instead of creating a new one."
        )
        self.existing = existing


class TooManyUnfinished(StoreError):
    """The owner already has as many unfinished batches as allowed."""

    def __init__(self, owner_key_id: str | None, limit: int) -> None:
        super().__init__(
            f"The owner already has {limit} unfinished batches; wait for one to finish."
        )
        self.owner_key_id = owner_key_id
        self.limit = limit


class BatchNotFound(StoreError):
    """The batch does not exist (never created, deleted, or purged)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(
            f"Batch {batch_id} is not in the results store; it was never created, "
            "was deleted after a failed publish, or was purged after its retention period."
        )
        self.batch_id = batch_id
