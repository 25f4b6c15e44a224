"""What every anchor shares: the per-chunk work and the command line.

The work is the same function in every anchor, so the figures differ only by the framework
around it: JSON decoding with Batchline's own codec (exact decimals), the hand-written
transform of the seed's four fields, JSON encoding of one output message per chunk.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_transforms import baseline
from schemas import jsonio

# Chunks of 1,000 items and their outputs are far below this; it matches what Batchline's own
# producers and consumers allow (32 MiB), so no anchor is held back by a smaller default.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def output_payload(batch_id: str, chunk_index: int, results: list[Any]) -> bytes:
    return jsonio.dumps({"batch_id": batch_id, "chunk_index": chunk_index, "results": results})


def transform_chunk(value: bytes) -> tuple[bytes, bytes]:
    """(key, value) of the output message for one ChunkEvent value."""
    chunk = jsonio.loads(value)
    results = [baseline(item) for item in chunk["items"]]
    batch_id: str = chunk["batch_id"]
    return batch_id.encode(), output_payload(batch_id, chunk["chunk_index"], results)


@dataclass(frozen=True, slots=True)
class AnchorArgs:
    bootstrap: str
    input: str
    output: str
    group: str
    scratch: Path


def parse_args(description: str | None) -> AnchorArgs:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="host:port of the broker")
    parser.add_argument("--input", required=True, help="topic of ChunkEvent messages")
    parser.add_argument("--output", required=True, help="topic of one output message per chunk")
    parser.add_argument("--group", required=True, help="consumer group (Faust: app id)")
    parser.add_argument("--scratch", required=True, type=Path, help="folder for local state")
    ns = parser.parse_args()
    return AnchorArgs(ns.bootstrap, ns.input, ns.output, ns.group, ns.scratch)
