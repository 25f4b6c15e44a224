"""Publishing to Kafka from the API: a thin aiokafka producer that connects on first use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from batchline.kafka_security import PLAINTEXT, KafkaSecurity
from streams.errors import ChunkTooLarge, KafkaUnavailable
from streams.signing import Headers
from streams.topics import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 15.0
PING_TIMEOUT_S = 2.0


class KafkaPublisher:
    def __init__(self, bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

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
        producer = await self._started()
        try:
            futures = [
                await producer.send(topic, value=value, key=key, headers=list(headers))
                for key, value, headers in messages
            ]
            sent = await asyncio.wait_for(asyncio.gather(*futures), SEND_TIMEOUT_S)
        except MessageSizeTooLargeError as exc:
            # The topic's own max.message.bytes decides, and may be below MAX_MESSAGE_BYTES
            # when the topic was made outside Batchline.
            raise ChunkTooLarge(
                "A chunk is larger than the requests topic accepts; use a smaller batch_size"
            ) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable(f"Publishing to {topic} failed; retry later") from exc
        return [(metadata.partition, metadata.offset) for metadata in sent]

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
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _drop_result(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
