"""What the agents use besides Faust: the store, the producer, the handlers, the consumer.

Everything that touches the network is opened when the worker starts (nothing at import or build
time) and closed when it stops: the worker runs this as one of its mode services. The handlers
get the narrow pieces they use (store, pipelines, metrics, outputs), never this object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import mode

from schemas.settings import Settings
from store import ResultsStore
from streams.chunk_handler import ChunkHandler, PreparedGroup
from streams.finishing import BatchFinisher
from streams.kafka_security import KafkaSecurity
from streams.outputs import KafkaOutputs
from streams.owners import StoredOwners
from streams.passes import OnePassAtATime
from streams.progress_handler import ProgressHandler
from streams.reconciler import Reconciler
from streams.record_stream import RecordGroup, RecordHandler, records_group_id
from streams.topics import TopicNames
from streams.transform_service import TransformService, transform_group_id
from telemetry.collector import freeze_startup_objects
from telemetry.metrics import Metrics
from transforms import PipelineRegistry

log = logging.getLogger(__name__)


class WorkerResources(mode.Service):
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        progress_table: MutableMapping[Any, Any],
        registry: PipelineRegistry | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.metrics = metrics
        self.topics = TopicNames(settings.topic_prefix)
        # Loaded here, so that a broken spec stops the worker before it joins any group.
        self.registry = registry or PipelineRegistry.load(
            settings.pipelines_dir, hash_secret=settings.hash_secret.get_secret_value().encode()
        )
        log.info("pipelines loaded", extra={"pipelines": self.registry.refs()})
        self._progress_table = progress_table
        self._ready = asyncio.Event()
        self._store: ResultsStore | None = None
        self._outputs: KafkaOutputs | None = None
        self.transform: TransformService[PreparedGroup] | None = None
        self.records: TransformService[RecordGroup] | None = None
        self.progress: ProgressHandler | None = None
        self.reconciler: Reconciler | None = None
        self.passes = OnePassAtATime()

    async def on_start(self) -> None:
        settings = self.settings
        self._store = store = await ResultsStore.connect(settings.store_url)
        security = KafkaSecurity.from_settings(settings)
        self._outputs = outputs = KafkaOutputs(settings.kafka_bootstrap, security)
        await outputs.start()
        finisher = BatchFinisher(
            store=store, outputs=outputs, metrics=self.metrics, status_topic=self.topics.status
        )
        chunks = ChunkHandler(
            store=store,
            registry=self.registry,
            outputs=outputs,
            finisher=finisher,
            metrics=self.metrics,
            topics=self.topics,
            secret=settings.chunk_secret.get_secret_value().encode(),
            owners=StoredOwners(store),
        )
        self.progress = ProgressHandler(
            store=store,
            table=self._progress_table,
            finisher=finisher,
            outputs=outputs,
            dead_letter_topic=self.topics.dead_letters,
            metrics=self.metrics,
        )
        self.reconciler = Reconciler(
            store=store,
            chunks=chunks,
            outputs=outputs,
            finisher=finisher,
            metrics=self.metrics,
            topics=self.topics,
            bootstrap=settings.kafka_bootstrap,
            stall_s=settings.reconcile_after_s,
            security=security,
            missing_after_s=settings.missing_chunks_after_s,
        )
        self.transform = TransformService(
            handler=chunks,
            metrics=self.metrics,
            bootstrap=settings.kafka_bootstrap,
            # The requests topic and every producer's own ingest topic, new ones included.
            topic=self.topics.chunk_inputs,
            pattern=True,
            group_id=transform_group_id(settings.topic_prefix),
            security=security,
        )
        await self.add_runtime_dependency(self.transform)
        self.records = TransformService(
            handler=RecordHandler(
                registry=self.registry, outputs=outputs, metrics=self.metrics, topics=self.topics
            ),
            metrics=self.metrics,
            bootstrap=settings.kafka_bootstrap,
            # The shared records topic and every producer's own records topic.
            topic=self.topics.record_inputs,
            pattern=True,
            group_id=records_group_id(settings.topic_prefix),
            security=security,
        )
        await self.add_runtime_dependency(self.records)
        freeze_startup_objects()
        self._ready.set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def store(self) -> ResultsStore:
        await self._ready.wait()
        assert self._store is not None  # noqa: S101 - set before ready
        return self._store

    async def on_stop(self) -> None:
        await self.passes.stop()
        # The consumer first (it drains and commits through the producer and the store),
        # before mode would stop it as a child after these are closed.
        for consumer in (self.transform, self.records):
            if consumer is not None:
                await consumer.stop()
        if self._outputs is not None:
            await self._outputs.stop()
            self._outputs = None
        if self._store is not None:
            await self._store.close()
            self._store = None
