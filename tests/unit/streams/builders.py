"""Builders of the stream handlers' inputs: records, chunk messages as producers and the API
write them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from api.security import hash_api_key
from schemas.events import OnInvalid
from store import ApiKeyRecord
from streams.chunking import iter_chunks
from streams.dead_letters import SourceMessage
from streams.owners import producer_namespace, producer_secret
from streams.signing import Headers, sign_all
from streams.topics import TopicNames

SECRET = b"chunk-secret"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
TOPICS = TopicNames("t")


def item(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid record for the default pipeline, distinct per ``n``."""
    record: dict[str, Any] = {
        "ts": "2024-01-01T00:00:00Z",
        "amt": str(Decimal(n) + Decimal("0.50")),
        "email": f"user{n}@example.com",
        "phone": "555-0123",
    }
    record.update(overrides)
    return record


def items(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [item(n) for n in range(start, start + count)]


def producer_chunks(
    batch_id: str,
    records: Sequence[Any],
    batch_size: int,
    *,
    pipeline: str = "default",
    on_invalid: OnInvalid = "reject",
) -> list[tuple[bytes, bytes]]:
    """(key, value) of every chunk of a batch, unsigned, as a producer writes them."""
    return list(
        iter_chunks(
            batch_id=batch_id,
            items=records,
            batch_size=batch_size,
            parallel=True,
            pipeline=pipeline,
            on_invalid=on_invalid,
        )
    )


def api_chunks(
    batch_id: str,
    records: Sequence[Any],
    batch_size: int,
    *,
    secret: bytes = SECRET,
    on_invalid: OnInvalid = "reject",
) -> list[tuple[bytes, bytes, Headers]]:
    """The chunks of a batch as the API publishes them: signed."""
    return sign_all(secret, producer_chunks(batch_id, records, batch_size, on_invalid=on_invalid))


def key_record(api_key: str, key_id: str, *, revoked: bool = False) -> ApiKeyRecord:
    """The store's row of an API key (its hash only)."""
    return ApiKeyRecord(
        key_id=key_id,
        name=key_id,
        key_hash=hash_api_key(api_key),
        created_at=BASE_TIME,
        revoked_at=BASE_TIME if revoked else None,
    )


def owned_batch_id(api_key: str, local_id: str) -> str:
    return f"{producer_namespace(hash_api_key(api_key))}:{local_id}"


def owned_chunks(
    api_key: str, batch_id: str, records: Sequence[Any], batch_size: int
) -> list[tuple[bytes, bytes, Headers]]:
    """The chunks of ``batch_id`` signed with the producer secret of ``api_key``."""
    secret = producer_secret(hash_api_key(api_key))
    return sign_all(secret, producer_chunks(batch_id, records, batch_size))


def messages(
    chunks: Sequence[tuple[bytes, bytes] | tuple[bytes, bytes, Headers]],
    first_offset: int = 0,
    topic: str = TOPICS.requests,
) -> list[SourceMessage]:
    """Chunks wrapped as messages (of the requests topic unless told) at consecutive offsets of
    partition 0."""
    wrapped = []
    for n, chunk in enumerate(chunks):
        headers: Headers = chunk[2] if len(chunk) == 3 else ()
        wrapped.append(SourceMessage(topic, 0, first_offset + n, chunk[0], chunk[1], headers))
    return wrapped


def message(value: bytes, key: bytes | None = b"k", offset: int = 0) -> SourceMessage:
    return SourceMessage(TOPICS.requests, 0, offset, key, value)
