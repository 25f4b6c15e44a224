"""The status topic follows a batch from the start (issue H point 5): queued when the API
accepts it, processing with its counts at most once a second, then its end."""

from __future__ import annotations

import asyncio

import pytest

from streams.topics import TopicNames
from tests.integration.api.client import api_client, numbered_items, submit_async
from tests.integration.stack import StackFactory
from tests.integration.streams.kafka_io import status_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ITEMS = 10_000


async def test_a_10000_item_batch_is_queued_then_processing_then_completed_on_the_status_topic(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    topic = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"]).status
    with api_client(url, stack.api_key) as client:
        body = {"data": numbered_items(ITEMS), "batch_size": 10}
        batch_id = await asyncio.to_thread(submit_async, client, body)

    events = await status_events(kafka_bootstrap, topic, batch_id, timeout_s=180)

    states = [event.status for event in events]
    assert states[0] == "queued", (states, stack.logs())
    assert states[-1] == "completed", states
    middle = events[1:-1]
    assert middle and {event.status for event in middle} == {"processing"}, states
    done = [event.processed for event in middle]
    assert done == sorted(done) and 0 < done[0] and done[-1] < ITEMS, done
    assert all(event.total == ITEMS and event.chunk_count == ITEMS // 10 for event in events)
    assert (events[-1].processed, events[-1].chunks_done) == (ITEMS, ITEMS // 10)
    # At most once a second: each processing event at least a second after the one before.
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(middle, middle[1:], strict=False)]
    assert all(gap >= 0.99 for gap in gaps), gaps
