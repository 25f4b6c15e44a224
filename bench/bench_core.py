"""Benchmark of the streaming core: Batchline's worker beside the tools users would pick instead.

Run as ``python -m bench.bench_core``. One local broker; for each chunk size, a batch of 100,000
seed-format items is cut into ChunkEvent messages (as an event-driven producer writes them).
Each tool in turn gets a 4-partition requests topic of its own holding those same messages,
produced before the tool starts; it transforms every item with the hand-written baseline and
writes one output message per chunk:

- a plain aiokafka consume-transform-produce loop, a plain Faust agent, a Quix Streams app
  (bench/anchors/, each a process of its own);
- Batchline's worker (``batchline worker``, a process of its own, SQLite store), which also
  stores every chunk and tracks the batch's progress: that is what the ratio prices.

Once a tool has answered that batch, the same items are produced again as a second batch to the
same, now warm, process. The machine is shared and noisy, and one tool measured once swung by
1.6x between runs: so every tool is measured ROUNDS times, the tools taking turns in an order
that rotates each round, and each figure is the median of its rounds (the spread is printed).

The two timing rules (A: input waiting, B: input streamed) are defined in bench.anchors.harness;
rule A is kept because it is the one first asked for, rule B because A flatters tools that
transform many chunks before their first output. Each tool must answer every chunk, and the
first and last chunk's outputs must equal baseline(input), or it gets no figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.anchors.harness import (
    RULE_STREAMED,
    RULE_WAITING,
    Batch,
    ToolFailed,
    create_output_topics,
    local_kafka,
    make_batch,
    percentile,
    prepare_batchline_topics,
    produce,
    run_id,
)
from bench.anchors.processes import (
    Child,
    ToolRun,
    batchline_env,
    run_tool,
    spawn_anchor,
    spawn_worker,
    stop_children_on_sigterm,
)
from bench.bench_service import _items, kafka_round_trip_ms
from streams.topics import TopicNames

ITEMS = 100_000
CHUNK_SIZES = (100, 1_000)
RTT_SAMPLES = 50
ROUNDS = 3
COLUMN = 18


@dataclass(frozen=True, slots=True)
class Tool:
    key: str  # a module of bench.anchors, or "batchline" for Batchline's worker
    label: str

    def topics(self, names: TopicNames) -> tuple[str, str]:
        """(input, output) topics for a run under ``names``."""
        output = names.results if self.key == BATCHLINE_KEY else f"{names.prefix}.out"
        return names.requests, output

    def start(self, bootstrap: str, names: TopicNames, scratch: Path) -> Child:
        if self.key == BATCHLINE_KEY:
            return spawn_worker(batchline_env(bootstrap, names.prefix, scratch))
        return spawn_anchor(
            f"bench.anchors.{self.key}",
            bootstrap=bootstrap,
            source=names.requests,
            output=self.topics(names)[1],
            group=f"{names.prefix}-{self.key}",
            scratch=scratch,
        )


BATCHLINE_KEY = "batchline"
TOOLS = [
    Tool("aiokafka_loop", "plain aiokafka loop"),
    Tool("faust_agent", "plain Faust agent"),
    Tool("quix_app", "Quix Streams 3.28"),
    Tool(BATCHLINE_KEY, "Batchline worker"),
]
BATCHLINE = TOOLS[-1].label


@dataclass(slots=True)
class CoreResult:
    # (tool, chunk size): one run per round that the tool finished
    runs: dict[tuple[str, int], list[ToolRun]] = field(default_factory=dict)
    failures: dict[tuple[str, int], str] = field(default_factory=dict)
    rtt_ms: list[float] = field(default_factory=list)


async def _prepare(bootstrap: str, tool: Tool, names: TopicNames, waiting: Batch) -> None:
    """The tool's own topics, its input already waiting: the same bytes for every tool."""
    await prepare_batchline_topics(bootstrap, names.prefix)
    if tool.key != BATCHLINE_KEY:
        await create_output_topics(bootstrap, [tool.topics(names)[1]])
    await produce(bootstrap, names.requests, [waiting])


def _turns(rounds: int) -> list[tuple[int, Tool]]:
    """(round, tool) in the order measured: every tool once a round, the order rotated by one
    each round, so that no tool always runs first, or always right after the same one."""
    return [
        (round_, TOOLS[(round_ + offset) % len(TOOLS)])
        for round_ in range(rounds)
        for offset in range(len(TOOLS))
    ]


def measure(bootstrap: str, scratch: Path, items: int, rounds: int = ROUNDS) -> CoreResult:
    result = CoreResult()
    run = run_id()
    data = _items(items)
    for size in CHUNK_SIZES:
        waiting = make_batch(f"bench-{run}-c{size}-a", data, size)
        streamed = make_batch(f"bench-{run}-c{size}-b", data, size)
        for round_, tool in _turns(rounds):
            names = TopicNames(f"bench-{run}-c{size}-r{round_}-{tool.key}")
            print(
                f"  {tool.label}, chunks of {size:,}, round {round_ + 1} of {rounds} ...",
                file=sys.stderr,
                flush=True,
            )
            asyncio.run(_prepare(bootstrap, tool, names, waiting))
            start = partial(tool.start, bootstrap, names, scratch / names.prefix)
            try:
                run_figures = run_tool(start, bootstrap, tool.topics(names), [waiting], [streamed])
            except ToolFailed as exc:
                print(f"bench_core: {tool.label}: {exc}", file=sys.stderr, flush=True)
                result.failures[tool.label, size] = str(exc).splitlines()[0]
                continue
            result.runs.setdefault((tool.label, size), []).append(run_figures)
    result.rtt_ms = asyncio.run(kafka_round_trip_ms(bootstrap, RTT_SAMPLES))
    return result


def _rounds(result: CoreResult, tool: str, size: int, rule: str) -> list[float]:
    return [float(getattr(run, rule)) for run in result.runs.get((tool, size), [])]


def _figure(result: CoreResult, tool: str, size: int, rule: str) -> float | None:
    """The median of the tool's rounds; None if it failed any round."""
    figures = _rounds(result, tool, size, rule)
    if not figures or (tool, size) in result.failures:
        return None
    return statistics.median(figures)


def _table(result: CoreResult, rule: str, title: str) -> None:
    print(title)
    print(f"{'tool':<32}" + "".join(f"{f'chunks of {size:,}':>{COLUMN}}" for size in CHUNK_SIZES))
    print("-" * (32 + COLUMN * len(CHUNK_SIZES)))
    for tool in TOOLS:
        figures = [_figure(result, tool.label, size, rule) for size in CHUNK_SIZES]
        cells = "".join(f"{'failed' if f is None else f'{f:,.0f}':>{COLUMN}}" for f in figures)
        print(f"{tool.label:<32}{cells}")
    for tool in TOOLS[:-1]:
        cells = ""
        for size in CHUNK_SIZES:
            ours = _figure(result, BATCHLINE, size, rule)
            theirs = _figure(result, tool.label, size, rule)
            cell = "-" if ours is None or theirs is None else f"{ours / theirs:.2f}x"
            cells += f"{cell:>{COLUMN}}"
        print(f"{f'Batchline / {tool.label}':<32}{cells}")
    print("spread of the rounds (lowest to highest):")
    for tool in TOOLS:
        spreads = []
        for size in CHUNK_SIZES:
            seen = _rounds(result, tool.label, size, rule)
            spread = f"{min(seen) / 1000:,.0f}k-{max(seen) / 1000:,.0f}k" if seen else "-"
            spreads.append(f"{spread:>{COLUMN}}")
        print(f"{'  ' + tool.label:<32}{''.join(spreads)}")


def print_tables(result: CoreResult, items: int) -> None:
    print(
        f"streaming core: {items:,} items per batch, 4 partitions, one broker, one process per "
        f"tool, run one after another, {ROUNDS} rounds in turn (items/s, median of the rounds)"
    )
    _table(result, "waiting", RULE_WAITING)
    print()
    _table(result, "streamed", RULE_STREAMED)
    producer = [
        statistics.median(
            [
                run.producer
                for (_, chunk), runs in result.runs.items()
                if chunk == size
                for run in runs
            ]
            or [0.0]
        )
        for size in CHUNK_SIZES
    ]
    cells = "".join(f"{f'{rate:,.0f}':>{COLUMN}}" for rate in producer)
    print(f"{'(B ceiling: driver producing)':<32}{cells}")
    print()
    p50, p99 = percentile(result.rtt_ms, 50), percentile(result.rtt_ms, 99)
    print(
        f"raw Kafka round trip (aiokafka produce -> consume, {len(result.rtt_ms)} samples): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    for (label, size), reason in sorted(result.failures.items()):
        print(f"failed: {label}, chunks of {size:,}: {reason}")


def main(bootstrap: str | None = None, items: int = ITEMS) -> CoreResult:
    """Measures and prints the table; starts (and stops) a broker unless one is given."""
    stop_children_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="batchline-bench-core-") as tmp:
        with local_kafka(bootstrap, Path(tmp)) as kafka:
            result = measure(kafka, Path(tmp), items)
    print_tables(result, items)
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=ITEMS, help="items per batch")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    sys.exit(1 if main(args.bootstrap, args.items).failures else 0)
