"""Registers the agents and timers on the Faust app: small named functions around the handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from streams.progress_agent import handle_progress
from streams.reconciler import reconcile
from streams.transform_agent import SourceMessage, handle_chunk

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)
GAUGE_INTERVAL_S = 5.0
RECONCILE_INTERVAL_S = 2.0


def register_agents(sa: StreamsApp) -> None:
    app = sa.app

    @app.agent(sa.requests, name="transform-chunks")
    async def transform_chunks(stream: Any) -> AsyncIterator[str]:
        async for event in stream.events():
            message = event.message
            yield await handle_chunk(
                sa,
                SourceMessage(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=event.key,
                    value=event.value,
                ),
            )

    @app.agent(sa.progress_in, name="track-progress")
    async def track_progress(stream: Any) -> AsyncIterator[str]:
        async for event in stream.events():
            yield await handle_progress(sa, event.value)

    @app.timer(GAUGE_INTERVAL_S, name="sample-gauges")  # type: ignore[untyped-decorator]
    async def sample_gauges() -> None:
        async with _logged_failure("sample-gauges"):
            sa.metrics.sample_resident_memory()
            await sample_consumer_lag(sa)

    @app.timer(RECONCILE_INTERVAL_S, on_leader=True, name="reconcile-stalled-batches")  # type: ignore[untyped-decorator]
    async def reconcile_stalled_batches() -> None:
        async with _logged_failure("reconcile"):
            await reconcile(sa)

    settings = sa.resources.settings

    @app.timer(settings.purge_interval_s, on_leader=True, name="purge-old-results")  # type: ignore[untyped-decorator]
    async def purge_old_results() -> None:
        async with _logged_failure("purge-old-results"):
            store = await sa.resources.store()
            purged = await store.purge_older_than(datetime.now(UTC) - settings.results_ttl)
            log.info("old results purged", extra={"batches": purged})


@asynccontextmanager
async def _logged_failure(timer: str) -> AsyncIterator[None]:
    """A timer that raises would crash the whole worker (mode stops on a failed task); a
    failed round is logged by type and the next round tries again."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of one round is survivable
        log.warning("timer round failed", extra={"timer": timer, "error_type": type(exc).__name__})


async def sample_consumer_lag(sa: StreamsApp) -> None:
    """Messages left to read on each input partition this worker holds (highwater - position)."""
    consumer = sa.app.consumer
    inputs = {sa.topics.requests, sa.topics.progress, sa.topics.control}
    lag = sa.metrics.consumer_lag
    lag.clear()  # partitions this worker gave up in a rebalance are not its lag any more
    for tp in consumer.assignment():
        if tp.topic not in inputs:
            continue
        position = await consumer.position(tp)
        highwater = consumer.highwater(tp)
        if position is None or highwater is None:
            continue
        lag.labels(topic=tp.topic, partition=str(tp.partition)).set(max(highwater - position, 0))
