"""Dead letters: a message a worker cannot process goes to the dead-letter topic with a code,
and its partition moves on.

A dead letter never carries the message's content, nor any string a producer chose: its code,
the one fixed text of that code, the exception's type, and where the message sits (the source
topic still holds it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from schemas.events import ChunkEvent, DeadLetterEvent
from streams.admission import DEAD_LETTER_MESSAGES, DeadLetterCode
from streams.outputs import Outgoing
from streams.signing import Headers
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    position: int  # of the message in its group
    message: SourceMessage
    code: DeadLetterCode
    error_type: str
    batch_id: str | None = None
    chunk_index: int | None = None
    # Only a chunk that proved it belongs to its batch (admitted) may fail it.
    fails_batch: bool = False
    # A stream record's invalid fields: {row, field, reason}, reasons being fixed texts.
    errors: list[dict[str, object]] | None = None

    @classmethod
    def of_chunk(
        cls,
        position: int,
        message: SourceMessage,
        chunk: ChunkEvent,
        code: DeadLetterCode,
        error_type: str,
        *,
        fails_batch: bool,
    ) -> DeadLetter:
        """The dead letter of a decoded chunk, naming its batch and index."""
        return cls(
            position,
            message,
            code,
            error_type,
            batch_id=chunk.batch_id,
            chunk_index=chunk.chunk_index,
            fails_batch=fails_batch,
        )

    @property
    def error(self) -> str:
        return DEAD_LETTER_MESSAGES[self.code]

    @property
    def batch_reason(self) -> str:
        """Why the batch failed, in codes and numbers only."""
        return f"Chunk {self.chunk_index} was dead-lettered ({self.code.value}): {self.error}"


def dead_letter_message(
    letter: DeadLetter, topic: str, metrics: Metrics, now: datetime
) -> Outgoing:
    """The dead-letter topic's message for ``letter`` (keyed by its batch, if it names one);
    counted and logged here."""
    message = letter.message
    event = DeadLetterEvent(
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        batch_id=letter.batch_id,
        chunk_index=letter.chunk_index,
        code=letter.code.value,
        error_type=letter.error_type,
        error=letter.error,
        errors=letter.errors,
        at=now,
    )
    metrics.errors.labels(error_type="dead_letter").inc()
    metrics.dead_letters.labels(code=letter.code.value).inc()
    log.warning(
        "message dead-lettered",
        extra={
            "source": message.where(),
            "batch_id": letter.batch_id,
            "chunk_index": letter.chunk_index,
            "code": letter.code.value,
            "error_type": letter.error_type,
        },
    )
    key = letter.batch_id.encode() if letter.batch_id else None
    return Outgoing(topic, key, event.to_bytes())
