"""The worker's purge timer: finished batches older than BATCHLINE_RESULTS_TTL leave the store."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from store import ResultsStore
from tests.integration.stack import StackFactory
from tests.integration.store.builders import new_batch

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PURGE_TIMEOUT_S = 60.0


async def _plant(store_url: str) -> None:
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(hours=2)
    store = await ResultsStore.connect(store_url)
    try:
        for batch_id, created_at, finished_at in (
            ("old-done", two_hours_ago, two_hours_ago),
            ("recent-done", two_hours_ago, now - timedelta(minutes=10)),
            ("old-running", two_hours_ago, None),
        ):
            await store.insert_batch(new_batch(batch_id=batch_id, created_at=created_at))
            await store.put_chunk(batch_id, 0, 0, [{"amount": 1}], [])
            if finished_at is not None:
                await store.finish_batch(batch_id, "completed", 1, 0, 0, finished_at)
    finally:
        await store.close()


async def _present(store_url: str) -> set[str]:
    store = await ResultsStore.connect(store_url)
    try:
        ids = ("old-done", "recent-done", "old-running")
        return {batch_id for batch_id in ids if await store.get_batch(batch_id) is not None}
    finally:
        await store.close()


def test_the_leader_purges_finished_batches_older_than_the_ttl_and_keeps_the_rest(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(BATCHLINE_RESULTS_TTL="1h", BATCHLINE_PURGE_INTERVAL_S="1")
    asyncio.run(_plant(stack.store_url))
    worker = stack.add_worker()
    deadline = time.monotonic() + PURGE_TIMEOUT_S
    while "old-done" in (present := asyncio.run(_present(stack.store_url))):
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.5)
    assert present == {"recent-done", "old-running"}
    purged_line = '"event": "old results purged", "batches": 1'
    while purged_line not in worker.output():  # logged just after the commit
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)
