"""What the API process holds open for its lifetime, built in the lifespan and closed after it."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from api.limits import RequestRateLimiter
from api.metrics import WorkerScrapes, build_metrics
from schemas.settings import Settings
from store import ResultsStore
from streams.kafka_security import KafkaSecurity
from streams.publisher import KafkaPublisher
from streams.status_listener import StatusListener
from streams.topics import TopicNames, ensure_configured_topics
from telemetry.metrics import Metrics
from transforms import PipelineRegistry

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ApiState:
    settings: Settings
    topics: TopicNames
    store: ResultsStore
    publisher: KafkaPublisher
    registry: PipelineRegistry
    listener: StatusListener
    topics_ready: asyncio.Event
    rate_limiter: RequestRateLimiter
    metrics: Metrics
    metrics_registry: CollectorRegistry
    worker_scrapes: WorkerScrapes


def _reload_pipelines_on_sighup(registry: PipelineRegistry, stack: AsyncExitStack) -> None:
    """SIGHUP loads new spec files (under uvicorn --workers N, uvicorn restarts the processes,
    which load them as they start). Only the main thread takes signals: an app run in a test
    client's thread goes without."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, registry.reload_logged)
    except (RuntimeError, ValueError):
        return
    stack.callback(loop.remove_signal_handler, signal.SIGHUP)


async def open_state(settings: Settings, stack: AsyncExitStack) -> ApiState:
    registry = PipelineRegistry.load(
        settings.pipelines_dir, hash_secret=settings.hash_secret.get_secret_value().encode()
    )
    log.info("pipelines loaded", extra={"pipelines": registry.refs()})
    _reload_pipelines_on_sighup(registry, stack)
    store = await ResultsStore.connect(settings.store_url)
    stack.push_async_callback(store.close)
    kafka_security = KafkaSecurity.from_settings(settings)
    publisher = KafkaPublisher(settings.kafka_bootstrap, kafka_security)
    publisher.start_watching()
    stack.push_async_callback(publisher.close)
    topics = TopicNames(settings.topic_prefix)

    topics_ready = asyncio.Event()

    async def create_topics() -> None:
        await ensure_configured_topics(settings)
        topics_ready.set()

    listener = StatusListener(
        settings.kafka_bootstrap, topics.status, prepare=create_topics, security=kafka_security
    )
    listener.start()
    stack.push_async_callback(listener.close)
    rate_limiter = RequestRateLimiter(settings.redis_url, per_minute=settings.requests_per_minute)
    stack.push_async_callback(rate_limiter.close)
    metrics, metrics_registry = build_metrics(registry)
    return ApiState(
        settings=settings,
        topics=topics,
        store=store,
        publisher=publisher,
        registry=registry,
        listener=listener,
        topics_ready=topics_ready,
        rate_limiter=rate_limiter,
        metrics=metrics,
        metrics_registry=metrics_registry,
        worker_scrapes=WorkerScrapes(settings.worker_metrics_urls),
    )
