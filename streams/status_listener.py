"""Wakes API requests waiting for a batch to finish, from the status topic.

Each API process reads the whole status topic from its end (no consumer group: every process
must see every event) and resolves the futures registered for the batches that finish. Waiters
are woken by events, never by polling the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas import jsonio
from schemas.events import BatchStatusEvent, decode
from schemas.statuses import FINISHED
from streams.errors import TopicCreationFailed
from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)
RECONNECT_DELAY_S = 2.0
# How long closing waits for a connection attempt under way (it gives up on its own).
CONNECT_GRACE_S = 10.0


class StatusListener:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        prepare: Callable[[], Coroutine[Any, Any, None]] | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        """``prepare`` runs before each (re)connection: it creates the topics when missing."""
        self._bootstrap = bootstrap
        self._security = security
        self._topic = topic
        self._prepare = prepare
        self._waiters: dict[str, set[asyncio.Future[BatchStatusEvent]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        # Creating the topics and starting the consumer run shielded from close(): cancelled
        # halfway through opening a connection, aiokafka leaves that connection open for good.
        self._connecting: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        connecting, consumer = self._connecting, self._consumer
        if connecting is not None and not connecting.done() and consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connecting, CONNECT_GRACE_S)
            await consumer.stop()

    async def wait_ready(self, timeout_s: float) -> bool:
        """True once the listener reads the topic (events from now on will be seen)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def register(self, batch_id: str) -> asyncio.Future[BatchStatusEvent]:
        """A future resolved with the batch's final status event. Register before publishing."""
        future: asyncio.Future[BatchStatusEvent] = asyncio.get_running_loop().create_future()
        self._waiters[batch_id].add(future)
        return future

    def unregister(self, batch_id: str, future: asyncio.Future[BatchStatusEvent]) -> None:
        waiters = self._waiters.get(batch_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[batch_id]

    def _deliver(self, event: BatchStatusEvent) -> None:
        if event.status not in FINISHED:
            return
        for future in self._waiters.pop(event.batch_id, set()):
            if not future.done():
                future.set_result(event)

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self._topic,
                bootstrap_servers=self._bootstrap,
                **self._security.client_options(),
                group_id=None,
                auto_offset_reset="latest",
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
            )
            self._consumer = consumer
            self._connecting = asyncio.create_task(self._connect(consumer), name="connect")
            try:
                await asyncio.shield(self._connecting)
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, TopicCreationFailed) as exc:
                # The reason names topics and broker errors only, never a record.
                reason = str(exc) if isinstance(exc, TopicCreationFailed) else None
                log.warning(
                    "status listener reconnecting",
                    extra={"error_type": type(exc).__name__, "reason": reason},
                )
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                self._ready.clear()
                if self._connecting.done():
                    await consumer.stop()
                # else close() waits for the attempt, then stops the consumer

    async def _connect(self, consumer: AIOKafkaConsumer) -> None:
        if self._prepare is not None:
            await self._prepare()
        await consumer.start()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        # Partitions are assigned on the first fetch; only then are later events sure to be seen.
        await consumer.getmany(timeout_ms=100)
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await consumer.seek_to_end()
        for partition in consumer.assignment():
            await consumer.position(partition)
        self._ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self._handle(record.value)

    def _handle(self, payload: bytes | None) -> None:
        if payload is None:
            return
        try:
            self._deliver(decode(BatchStatusEvent, payload))
        except (jsonio.JSONDecodeError, ValidationError):
            log.warning("status event ignored: not a BatchStatusEvent")
