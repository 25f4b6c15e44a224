"""Anchor: the consume-transform-produce loop a competent engineer writes by hand with aiokafka.

At-least-once like the others: a batch of records is fetched, every output is handed to the
producer without waiting, then all sends are awaited and only then are the offsets committed.
Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.anchors.common import MAX_MESSAGE_BYTES, AnchorArgs, parse_args, transform_chunk

POLL_TIMEOUT_MS = 500
# Enough records per fetch that sends batch up, few enough that a commit comes every moment.
MAX_RECORDS = 100


async def run(args: AnchorArgs) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    consumer = AIOKafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
    )
    # acks=all, as Batchline's own producers use: an output is only counted once it is durable.
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", max_request_size=MAX_MESSAGE_BYTES
    )
    await producer.start()
    await consumer.start()
    try:
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS)
            sends = []
            for records in fetched.values():
                for record in records:
                    key, value = transform_chunk(record.value)
                    sends.append(await producer.send(args.output, value, key=key))
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    asyncio.run(run(parse_args(__doc__)))


if __name__ == "__main__":
    main()
