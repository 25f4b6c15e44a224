"""What the API process holds open for its lifetime, built in the lifespan and closed after it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from schemas.settings import Settings
from store import ResultsStore
from streams.publisher import KafkaPublisher
from streams.topics import TopicNames


@dataclass(slots=True)
class ApiState:
    settings: Settings
    topics: TopicNames
    store: ResultsStore
    publisher: KafkaPublisher


async def open_state(settings: Settings, stack: AsyncExitStack) -> ApiState:
    store = await ResultsStore.connect(settings.store_url)
    stack.push_async_callback(store.close)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    stack.push_async_callback(publisher.close)
    return ApiState(
        settings=settings,
        topics=TopicNames(settings.topic_prefix),
        store=store,
        publisher=publisher,
    )
