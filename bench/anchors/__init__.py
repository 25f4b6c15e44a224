"""The tools a user would pick instead of Batchline, each doing Batchline's streaming job by hand.

Every anchor reads ChunkEvent messages (raw bytes) from an input topic, decodes them with
:mod:`schemas.jsonio`, applies :func:`bench.bench_transforms.baseline` to every item and writes
one output message per chunk (see :mod:`bench.anchors.common`). Each runs as its own process,
``python -m bench.anchors.<name> --bootstrap ... --input ... --output ... --group ...``, until
SIGTERM, so that each one gets a process and a CPU budget like Batchline's worker:

- :mod:`bench.anchors.aiokafka_loop`: a hand-written aiokafka consume-transform-produce loop;
- :mod:`bench.anchors.faust_agent`: a minimal faust-streaming app with one agent;
- :mod:`bench.anchors.quix_app`: a Quix Streams application with one StreamingDataFrame.

The driver's side, shared by bench_core and bench_http: :mod:`bench.anchors.harness` (broker,
topics, input, reading and checking outputs, the timing rules) and :mod:`bench.anchors.processes`
(starting, watching and stopping the tools, Batchline's worker among them).
"""
