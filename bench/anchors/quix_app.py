"""Anchor: a Quix Streams 3 application, one StreamingDataFrame doing the chunk work.

Bytes in and out (the codec is ours, as in Batchline); the output keeps the input's key, which
is what ``to_topic`` does. Quix's defaults otherwise (at-least-once, librdkafka's acks=all).
Runs until SIGTERM, which Quix's ``run`` turns into a clean stop.
"""

from __future__ import annotations

from quixstreams import Application

from bench.anchors.common import MAX_MESSAGE_BYTES, AnchorArgs, parse_args, transform_chunk


def output_value(value: bytes) -> bytes:
    return transform_chunk(value)[1]


def build_app(args: AnchorArgs) -> Application:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.scratch / "state",
        loglevel="WARNING",
        producer_extra_config={"message.max.bytes": MAX_MESSAGE_BYTES},
    )
    source = app.topic(args.input, key_deserializer="bytes", value_deserializer="bytes")
    output = app.topic(args.output, key_serializer="bytes", value_serializer="bytes")
    app.dataframe(source).apply(output_value).to_topic(output)
    return app


def main() -> None:
    build_app(parse_args(__doc__)).run()


if __name__ == "__main__":
    main()
