"""What the stream handlers send, behind a small protocol so that their decisions can be tested
without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer

from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.topics import MAX_MESSAGE_BYTES, PRODUCER_BATCH_BYTES

# Sends of one group go out together; a short linger lets the producer batch them per partition
# without holding back a lone 1-item chunk.
LINGER_MS = 0
SEND_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Outputs(Protocol):
    async def send(self, messages: Sequence[Outgoing]) -> None:
        """Sends every message, all in flight at once, and returns when the broker has
        acknowledged all of them; raises if any send failed."""


class KafkaOutputs:
    """An idempotent aiokafka producer of the worker's own (acks=all)."""

    def __init__(self, bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **security.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            max_batch_size=PRODUCER_BATCH_BYTES,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=SEND_TIMEOUT_MS,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, messages: Sequence[Outgoing]) -> None:
        futures = [
            await self._producer.send(
                message.topic,
                value=message.value,
                key=message.key,
                headers=list(message.headers) if message.headers else None,
            )
            for message in messages
        ]
        await asyncio.gather(*futures)
