"""Anchor: a minimal faust-streaming app with one agent doing the chunk work.

Raw bytes in and out (the codec is ours, as in Batchline), tables in memory, no web server: the
least a Faust user would set up. Producer acks and message size match Batchline's worker, so the
difference is what Batchline adds around the agent. Runs as a Faust worker until SIGTERM.
"""

from __future__ import annotations

import faust
from faust.types import StreamT

from bench.anchors.common import MAX_MESSAGE_BYTES, AnchorArgs, parse_args, transform_chunk

PARTITIONS = 4


def build_app(args: AnchorArgs) -> faust.App:
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=str(args.scratch),
        web_enabled=False,
        autodiscover=False,
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
    )
    source = app.topic(
        args.input, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    output = app.topic(
        args.output, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    async def transform(stream: StreamT[bytes]) -> None:
        async for value in stream:
            key, payload = transform_chunk(value)
            await output.send(key=key, value=payload)

    app.agent(source, name="transform")(transform)
    return app


def main() -> None:
    args = parse_args(__doc__)
    args.scratch.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(build_app(args), loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
