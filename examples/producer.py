"""An event-driven producer: publishes a batch straight onto Kafka, owned by an API key.

    python examples/producer.py --bootstrap 127.0.0.1:9092 --api-key bl_... --count 1000

The batch is then served to that key like one submitted over HTTP (status, results, errors, the
list and the CLI). The batch ID is printed alone on the last line of stdout, so that

    BATCH=$(python examples/producer.py ... | tail -n 1)
    batchline status "$BATCH"

follows it. It needs only aiokafka; the ownership proof is computed from the key as the README
describes ("Writing batches straight to Kafka"), so a producer in another language can do the
same. It never sends the key itself anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import uuid
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaProducer

SIGNATURE_HEADER = "batchline-signature"
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def owner_proof(api_key: str) -> tuple[str, bytes]:
    """(namespace, signing secret) of an API key, both derived from its SHA-256."""
    key_hash = hashlib.sha256(api_key.encode()).hexdigest().encode()
    namespace = hmac.new(key_hash, b"batchline producer namespace", hashlib.sha256).hexdigest()
    secret = hmac.new(key_hash, b"batchline producer signature", hashlib.sha256).digest()
    return "p" + namespace[:16], secret


def signature(secret: bytes, key: bytes, value: bytes) -> bytes:
    """HMAC-SHA256 over the key's length (4 bytes, big-endian), the key and the value."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    mac.update(len(key).to_bytes(4, "big"))
    mac.update(key)
    mac.update(value)
    return mac.hexdigest().encode()


def seed_records(count: int) -> Iterator[dict[str, Any]]:
    """Records shaped like the API contract's example, distinct per row."""
    for row in range(count):
        yield {
            "ts": f"2024-01-01T{row // 3600 % 24:02d}:{row // 60 % 60:02d}:{row % 60:02d}+02:00",
            "amt": f"{row % 1000}.{row % 100:02d}",
            "email": f"user{row}@example.com",
            "phone": f"555-{row % 10000:04d}",
        }


def chunk_messages(
    batch_id: str, records: list[dict[str, Any]], batch_size: int, pipeline: str
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each chunk: every chunk but the last holds batch_size records."""
    total = len(records)
    chunk_count = max(1, math.ceil(total / batch_size))
    for index in range(chunk_count):
        first_row = index * batch_size
        chunk = {
            "schema_version": 1,
            "batch_id": batch_id,
            "chunk_index": index,
            "chunk_count": chunk_count,
            "first_row": first_row,
            "total": total,
            "pipeline": pipeline,
            "on_invalid": "reject",
            "items": records[first_row : first_row + batch_size],
        }
        # Keyed per chunk, so that the chunks spread over the partitions (and the workers).
        yield f"{batch_id}/{index}".encode(), json.dumps(chunk).encode()


async def publish(args: argparse.Namespace) -> str:
    namespace, secret = owner_proof(args.api_key)
    batch_id = f"{namespace}:{args.name or uuid.uuid4().hex}"
    records = list(seed_records(args.count))
    login: dict[str, Any] = {}
    if args.username:  # a broker that authenticates, as `batchline broker --auth` starts it
        login = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": args.username,
            "sasl_plain_password": args.password,
        }
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        **login,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_REQUEST_BYTES,
    )
    await producer.start()
    try:
        sends = []
        for key, value in chunk_messages(batch_id, records, args.batch_size, args.pipeline):
            headers = [(SIGNATURE_HEADER, signature(secret, key, value))]
            sends.append(await producer.send(args.topic, value, key=key, headers=headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return batch_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of a Kafka broker")
    parser.add_argument("--api-key", required=True, help="the API key that will own the batch")
    parser.add_argument("--count", type=int, required=True, help="records in the batch")
    parser.add_argument("--batch-size", type=int, default=100, help="records per chunk")
    parser.add_argument("--pipeline", default="default", help="pipeline: name or name@version")
    parser.add_argument(
        "--topic",
        default="batchline.requests",
        help="the requests topic (<prefix>.requests), or the key's own <prefix>.ingest.<namespace>",
    )
    parser.add_argument("--name", help="your part of the batch ID (default: a random UUID)")
    parser.add_argument("--username", help="SASL/SCRAM-SHA-512 login, if the broker asks for one")
    parser.add_argument("--password", help="its password (BATCHLINE_KAFKA_PASSWORD if unset)")
    args = parser.parse_args()
    if args.username and not args.password:
        args.password = os.environ.get("BATCHLINE_KAFKA_PASSWORD", "")
    if args.count < 0 or args.batch_size < 1:
        parser.error("--count must be 0 or more and --batch-size 1 or more")
    batch_id = asyncio.run(publish(args))
    print(f"published {args.count} records to {args.topic}")
    print(batch_id)


if __name__ == "__main__":
    main()
