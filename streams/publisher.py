"""Publishing to Kafka from the API: a thin aiokafka producer that connects on first use.

While the API runs, a watch asks the broker for metadata every second. When the broker does not
answer, every send (those waiting, and new ones) fails at once with KafkaUnavailable, which the
API answers with 503: clients learn of an outage within about PROBE_INTERVAL_S + PING_TIMEOUT_S,
not after SEND_TIMEOUT_S each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import RecordMetadata

from streams.errors import ChunkTooLarge, KafkaUnavailable
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.signing import Headers
from streams.topics import MAX_MESSAGE_BYTES, PRODUCER_BATCH_BYTES

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 15.0
PING_TIMEOUT_S = 2.0
PROBE_INTERVAL_S = 1.0
# How long after a broker stops answering a submit can still wait for it.
OUTAGE_NOTICED_WITHIN_S = PROBE_INTERVAL_S + PING_TIMEOUT_S


class KafkaPublisher:
    def __init__(self, bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        # Set by the watch while the broker does not answer; waiting sends wait on it too.
        self._unreachable = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    def start_watching(self) -> None:
        self._watch = asyncio.create_task(self._watch_broker(), name="kafka-watch")

    def ensure_reachable(self) -> None:
        """Raises KafkaUnavailable while the watch finds the broker not answering."""
        if self._unreachable.is_set():
            raise KafkaUnavailable("Kafka does not answer; retry later")

    async def _watch_broker(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            answered = await self.ping()
            if answered != self._unreachable.is_set():
                continue
            if answered:
                log.warning("Kafka answers again", extra={"bootstrap": self._bootstrap})
                self._unreachable.clear()
            else:
                log.warning("Kafka does not answer", extra={"bootstrap": self._bootstrap})
                self._unreachable.set()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                **self._security.client_options(),
                acks="all",
                enable_idempotence=True,
                linger_ms=0,
                max_batch_size=PRODUCER_BATCH_BYTES,
                max_request_size=MAX_MESSAGE_BYTES,
                request_timeout_ms=int(SEND_TIMEOUT_S * 1000),
            )
            try:
                await asyncio.wait_for(producer.start(), CONNECT_TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                await producer.stop()
                log.warning("Kafka unreachable", extra={"bootstrap": self._bootstrap})
                raise KafkaUnavailable("Kafka is unreachable; retry later") from exc
            self._producer = producer
            return producer

    async def send_all(
        self, topic: str, messages: Sequence[tuple[bytes, bytes, Headers]]
    ) -> list[tuple[int, int]]:
        """Sends every (key, value, headers), waits until the broker has acknowledged all of
        them, and returns where each landed: (partition, offset), in the order given."""
        self.ensure_reachable()
        producer = await self._started()
        try:
            futures = [
                await producer.send(topic, value=value, key=key, headers=list(headers))
                for key, value, headers in messages
            ]
            sent = await asyncio.wait_for(self._unless_unreachable(futures), SEND_TIMEOUT_S)
        except MessageSizeTooLargeError as exc:
            # The topic's own max.message.bytes decides, and may be below MAX_MESSAGE_BYTES
            # when the topic was made outside Batchline.
            raise ChunkTooLarge(
                "A chunk is larger than the requests topic accepts; use a smaller batch_size"
            ) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable(f"Publishing to {topic} failed; retry later") from exc
        return [(metadata.partition, metadata.offset) for metadata in sent]

    async def _unless_unreachable(
        self, futures: list[asyncio.Future[RecordMetadata]]
    ) -> list[RecordMetadata]:
        """Every send's metadata, or KafkaUnavailable as soon as the watch finds the broker gone
        (the producer may still deliver them later: the API then fails the batch, and workers
        finish nothing of a failed batch)."""
        sends: asyncio.Future[list[RecordMetadata]] = asyncio.gather(*futures)
        gone = asyncio.ensure_future(self._unreachable.wait())
        either: set[asyncio.Future[Any]] = {sends, gone}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not sends.done():
            sends.cancel()
            sends.add_done_callback(_drop_result)
            raise KafkaUnavailable("Kafka stopped answering; retry later")
        return sends.result()

    async def ping(self) -> bool:
        try:
            producer = await self._started()
            # Shielded: cancelled halfway through opening a connection, aiokafka would leave it
            # open for good. A slow lookup finishes in the background and its result is dropped.
            lookup = asyncio.ensure_future(producer.client.fetch_all_metadata())
            lookup.add_done_callback(_drop_result)
            await asyncio.wait_for(asyncio.shield(lookup), PING_TIMEOUT_S)
        except (KafkaUnavailable, KafkaError, OSError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _drop_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
