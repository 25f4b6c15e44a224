"""Registers the agents and timers on the Faust app: small named functions around the handlers."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from faust.streams import _current_event

from streams.app import StreamsApp
from streams.dead_letters import SourceMessage
from streams.resources import WorkerResources

log = logging.getLogger(__name__)
GAUGE_INTERVAL_S = 5.0
RECONCILE_INTERVAL_S = 2.0
# Progress messages folded into one table update per batch: as many as arrive within this
# long, up to this many. Faust's take wakes every ``within`` even with nothing to take: at 2 ms
# that was 8% of a core, idle, taken from the requests it slowed down. Batches of one chunk do
# not wait for this agent (see streams.finishing); a larger batch's end waits 5 ms more on
# average.
PROGRESS_GROUP_MAX = 500
PROGRESS_GROUP_WITHIN_S = 0.010


def register_agents(sa: StreamsApp, resources: WorkerResources) -> None:
    app = sa.app

    @app.agent(sa.progress_in, name="track-progress")
    async def track_progress(stream: Any) -> AsyncIterator[dict[str, str]]:
        await resources.wait_ready()
        async for events in stream.take_events(PROGRESS_GROUP_MAX, within=PROGRESS_GROUP_WITHIN_S):
            assert resources.progress is not None  # noqa: S101 - set before ready
            # Progress and control messages are keyed by batch ID, so a batch's messages and
            # its table state share a partition. Faust (and its RocksDB store) files a table
            # write under the current event's partition: each batch is written with one of
            # its own events current. Events are acked after the group (take_events).
            focus = _focus_on_own_event({event.key: event for event in events})
            try:
                yield await resources.progress.handle_group([_sourced(e) for e in events], focus)
            except Exception as exc:  # noqa: BLE001 - a crashed agent would count nothing more
                # Faust does not restart a crashed agent: every later batch would wait for the
                # reconciler. This group's counts are repaired by it (from the stored chunks).
                log.error("progress group failed", extra={"error_type": type(exc).__name__})
                yield {}

    # Each timer only starts its job's pass (resources.passes): a slow pass never makes the
    # timer overlap itself, and a pass still running when the next is due is not doubled.
    async def sample_gauges() -> None:
        async with _logged_failure("sample-gauges"):
            sa.metrics.sample_resident_memory()
            await sample_consumer_lag(sa, resources)

    async def reconcile_stalled_batches() -> None:
        async with _logged_failure("reconcile"):
            await resources.wait_ready()
            assert resources.reconciler is not None  # noqa: S101 - set before ready
            await resources.reconciler.run_once()

    settings = resources.settings

    async def purge_old_results() -> None:
        async with _logged_failure("purge-old-results"):
            store = await resources.store()
            purged = await store.purge_older_than(datetime.now(UTC) - settings.results_ttl)
            if purged:
                log.info("old results purged", extra={"batches": purged})

    @app.timer(GAUGE_INTERVAL_S, name="sample-gauges")  # type: ignore[untyped-decorator]
    async def sample_gauges_tick() -> None:
        resources.passes.start("sample-gauges", sample_gauges)

    @app.timer(RECONCILE_INTERVAL_S, on_leader=True, name="reconcile-stalled-batches")  # type: ignore[untyped-decorator]
    async def reconcile_tick() -> None:
        resources.passes.start("reconcile", reconcile_stalled_batches)

    @app.timer(settings.purge_interval_s, on_leader=True, name="purge-old-results")  # type: ignore[untyped-decorator]
    async def purge_tick() -> None:
        resources.passes.start("purge-old-results", purge_old_results)


def _sourced(event: Any) -> SourceMessage:
    message = event.message
    return SourceMessage(message.topic, message.partition, message.offset, event.key, event.value)


def _focus_on_own_event(by_key: dict[bytes, Any]) -> Callable[[str], bool]:
    def focus(batch_id: str) -> bool:
        event = by_key.get(batch_id.encode())
        if event is None:
            return False
        # Only the context variable that faust.streams.current_event() reads (the table and
        # its RocksDB store do), in this task alone: setting Stream.current_event instead
        # would make take_events() file the next incoming event under this one, and lose it.
        _current_event.set(weakref.ref(event))
        return True

    return focus


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


async def sample_consumer_lag(sa: StreamsApp, resources: WorkerResources) -> None:
    """Messages left to read on each input partition this worker holds (highwater - position):
    the requests and records topics from their consumers, progress and control from Faust's."""
    lag = sa.metrics.consumer_lag
    lag.clear()  # partitions this worker gave up in a rebalance are not its lag any more
    found = {}
    for service in (resources.transform, resources.records):
        if service is not None:
            found.update(await service.lag())
    consumer = sa.app.consumer
    inputs = {sa.topics.progress, sa.topics.control}
    for tp in consumer.assignment():
        if tp.topic not in inputs:
            continue
        position = await consumer.position(tp)
        highwater = consumer.highwater(tp)
        if position is not None and highwater is not None:
            found[tp] = max(highwater - position, 0)
    for tp, messages in found.items():
        lag.labels(topic=tp.topic, partition=str(tp.partition)).set(messages)
