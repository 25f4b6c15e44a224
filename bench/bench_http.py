"""Benchmark of Batchline over HTTP, and of its worker's memory as batches queue up.

Run as ``python -m bench.bench_http``. On one local broker (started here unless one is given):

- latency: a 1-item batch submitted and answered synchronously through the API, beside a bare
  aiokafka produce -> consume round trip on the same broker (what any Kafka service pays);
  both after 20 warm-up requests, with this client's garbage collector kept out of the timings
  (bench.bench_service.quiet_collector);
- end to end: 8 clients at once, each with an API key of its own, each submitting 2 batches of
  10,000 items (batch_size 500, ``Prefer: respond-async``) and polling until both are
  completed; total items / wall time. Beside it, the plain aiokafka loop of bench.anchors on the
  same work (16 batches of 10,000 items in chunks of 500) produced to it once it is warm, by
  rule B of bench.anchors.harness: the nearest to a wall time from submit to completion.
  Both take turns ROUNDS times (Batchline's stack stays up, idle, while the loop runs), and
  each figure is the median of its rounds: measured once, the loop alone swung from 88k to 161k
  items/s between runs;
- memory: one worker's peak resident set size while 1, then 20, batches of 10,000 items
  (chunks of 100, event-driven ChunkEvents) wait on its requests topic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer

from batchline.broker import free_port
from batchline.devstack import _spawn, _wait_api
from batchline.errors import BatchlineError
from bench.anchors.harness import (
    RULE_STREAMED,
    TOOL_TIMEOUT_S,
    Batch,
    ToolFailed,
    check_outputs,
    create_output_topics,
    local_kafka,
    make_batch,
    percentile,
    prepare_batchline_topics,
    produce,
    read_outputs,
    run_id,
)
from bench.anchors.processes import (
    Child,
    PeakRss,
    ToolRun,
    batchline_env,
    run_tool,
    spawn_anchor,
    spawn_worker,
    stop_children_on_sigterm,
)
from bench.bench_service import _items, kafka_round_trip_ms, quiet_collector
from bench.bench_transforms import baseline
from schemas import jsonio
from schemas.events import BatchStatusEvent
from schemas.statuses import FINISHED
from streams.topics import TopicNames
from tests.integration.stack import new_key

API_PATH = "/api/v1/transform/batch"
# The p99 of 50 samples was the slowest one alone, and of 200 the second or third slowest: over
# eight runs on the same code the ratio of the two p99s swung from 7x to 15x. With 1,000 it is
# the tenth slowest, and the round trip's samples span a second or more instead of a quarter,
# long enough to meet the broker's own pauses, which the service's samples (15 s) always meet.
LATENCY_SAMPLES = 1000
# The latency row sends its samples from one key within about 15 s: far over the API's default
# limit (1,000 a minute), which this bench does not measure.
BENCH_REQUESTS_PER_MINUTE = 1_000_000
WARM_UP_SAMPLES = 20
WARM_UP_TIMEOUT_S = 120.0
CLIENTS = 8
BATCHES_PER_CLIENT = 2  # the API lets a key have at most 5 unfinished batches
BATCH_ITEMS = 10_000
HTTP_BATCH_SIZE = 500
# 2 batches polled 4 times a second stay far below the API's 1,000 requests a minute per key.
POLL_INTERVAL_S = 0.25
HTTP_TIMEOUT_S = 900.0
ROUNDS = 3
RSS_BATCHES = 20
RSS_BATCH_SIZE = 100
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpFigures:
    latency_ms: list[float]
    rtt_ms: list[float]
    items_per_s: list[float]  # one figure per round
    items: int
    done_s: list[float]  # of the median round: when each batch was seen completed, seconds
    # after the first submit


@dataclass(frozen=True, slots=True)
class RssFigures:
    idle: int
    one: int
    many: int


# --- through the API ---------------------------------------------------------------------------


def _sync_latency_ms(client: httpx.Client, samples: int) -> list[float]:
    """bench_service.service_latency_ms, but a sample only counts when it was answered in
    full (200 with its one result), not accepted for later (202)."""
    body = {"data": _items(1)}
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.post(API_PATH, json=body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or response.json().get("processed") != 1:
            raise ToolFailed(f"1-item batch: HTTP {response.status_code}: {response.text[:300]}")
        timings.append(elapsed_ms)
    return timings


def _warm_up(client: httpx.Client) -> None:
    """Until a 1-item batch is answered in full: the worker joins its group on first traffic."""
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    while True:
        response = client.post(API_PATH, json={"data": _items(1)})
        if response.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise ToolFailed(f"no 1-item batch answered in {WARM_UP_TIMEOUT_S:.0f} s")


async def _one_client(
    url: str, key: str, bodies: list[bytes], alive: Callable[[], bool], started: float
) -> dict[str, float]:
    """Submits its batches, then polls them all until completed; returns when each was seen
    completed (perf_counter seconds after ``started``), by batch ID."""
    headers = {"X-API-Key": key, "Prefer": "respond-async", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        pending: set[str] = set()
        for body in bodies:
            response = await client.post(API_PATH, content=body)
            if response.status_code != 202:
                raise ToolFailed(f"submit: HTTP {response.status_code}: {response.text[:300]}")
            pending.add(response.json()["batch_id"])
        done: dict[str, float] = {}
        while pending:
            await asyncio.sleep(POLL_INTERVAL_S)
            if not alive():
                raise ToolFailed("the worker or the API exited before the batches completed")
            for batch_id in sorted(pending):
                response = await client.get(f"{API_PATH}/{batch_id}")
                response.raise_for_status()
                status = response.json()
                if status["status"] in ("failed", "cancelled"):
                    raise ToolFailed(f"batch {batch_id} {status['status']}: {status}")
                if status["status"] == "completed":
                    if status["processed"] != BATCH_ITEMS:
                        raise ToolFailed(f"batch {batch_id}: {status['processed']} processed")
                    pending.discard(batch_id)
                    done[batch_id] = time.perf_counter() - started
        return done


async def _spot_check(url: str, key: str, batch_id: str, items: list[Any]) -> None:
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        response = await client.get(f"{API_PATH}/{batch_id}/results", params={"limit": 10})
        response.raise_for_status()
    expected = jsonio.loads(jsonio.dumps([baseline(item) for item in items[:10]]))
    if jsonio.loads(response.content)["results"] != expected:
        raise ToolFailed(f"results of {batch_id} differ from baseline(input)")


async def _end_to_end(
    url: str, keys: list[str], alive: Callable[[], bool]
) -> tuple[float, list[float]]:
    items = jsonio.loads(jsonio.dumps(_items(BATCH_ITEMS)))
    body = {"data": items, "batch_size": HTTP_BATCH_SIZE, "parallel": True}
    encoded = jsonio.dumps(body)  # outside the timed part: a client has its bytes ready
    started = time.perf_counter()
    async with asyncio.timeout(HTTP_TIMEOUT_S):
        done_by_client = await asyncio.gather(
            *(_one_client(url, key, [encoded] * BATCHES_PER_CLIENT, alive, started) for key in keys)
        )
    elapsed = time.perf_counter() - started
    await _spot_check(url, keys[0], next(iter(done_by_client[0])), items)
    done_s = sorted(seconds for client in done_by_client for seconds in client.values())
    return len(keys) * BATCHES_PER_CLIENT * BATCH_ITEMS / elapsed, done_s


def measure_service(
    bootstrap: str, prefix: str, scratch: Path, between_rounds: Callable[[int], None]
) -> HttpFigures:
    """The latency rows, then ROUNDS end-to-end rounds on the same stack, calling
    ``between_rounds`` (the anchor's turn) after each."""
    env = batchline_env(bootstrap, prefix, scratch / prefix)
    env["BATCHLINE_REQUESTS_PER_MINUTE"] = str(BENCH_REQUESTS_PER_MINUTE)
    keys = [new_key(env["BATCHLINE_STORE_URL"], f"bench-{n}") for n in range(CLIENTS + 1)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    children: list[Child] = []
    try:
        children.append(spawn_worker(env))
        children.append(Child("batchline api", _spawn(["api", "--port", str(port)], env)))
        _wait_api(url, [child.process for child in children])
        with httpx.Client(base_url=url, headers={"X-API-Key": keys[0]}, timeout=60) as client:
            _warm_up(client)
            # The first seconds after the worker joined still see its group and tables settle.
            _sync_latency_ms(client, WARM_UP_SAMPLES)
            with quiet_collector():
                latency = _sync_latency_ms(client, LATENCY_SAMPLES)
        with quiet_collector():
            rtt = asyncio.run(kafka_round_trip_ms(bootstrap, LATENCY_SAMPLES))

        def alive() -> bool:
            return all(child.alive() for child in children)

        rounds = []
        for round_ in range(ROUNDS):
            rounds.append(asyncio.run(_end_to_end(url, keys[1:], alive)))
            between_rounds(round_)
    except (BatchlineError, httpx.HTTPError, TimeoutError) as exc:
        # A stack that does not start or answers with an error gets no figure, like a tool.
        raise ToolFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        for child in reversed(children):
            child.stop()
    rates = [rate for rate, _ in rounds]
    _, done_s = sorted(rounds)[len(rounds) // 2]
    return HttpFigures(latency, rtt, rates, CLIENTS * BATCHES_PER_CLIENT * BATCH_ITEMS, done_s)


# --- the same work for the plain aiokafka loop -------------------------------------------------


def measure_loop(bootstrap: str, prefix: str, scratch: Path) -> ToolRun:
    """The aiokafka anchor on the HTTP run's work, by rule B: started and warmed up on one
    chunk, then sent the 16 batches, timed from the start of producing to the last output."""
    data = _items(BATCH_ITEMS)
    warm = make_batch(f"{prefix}-warm", data[:HTTP_BATCH_SIZE], HTTP_BATCH_SIZE)
    count = CLIENTS * BATCHES_PER_CLIENT
    batches = [make_batch(f"{prefix}-{n}", data, HTTP_BATCH_SIZE) for n in range(count)]
    names = TopicNames(prefix)
    output = f"{prefix}.out"

    async def prepare() -> None:
        await prepare_batchline_topics(bootstrap, prefix)
        await create_output_topics(bootstrap, [output])
        await produce(bootstrap, names.requests, [warm])

    asyncio.run(prepare())

    def start() -> Child:
        return spawn_anchor(
            "bench.anchors.aiokafka_loop",
            bootstrap=bootstrap,
            source=names.requests,
            output=output,
            group=f"{prefix}-aiokafka_loop",
            scratch=scratch / prefix,
        )

    return run_tool(start, bootstrap, (names.requests, output), [warm], batches)


# --- worker memory -----------------------------------------------------------------------------


async def wait_finished(
    bootstrap: str, topic: str, batches: list[Batch], alive: Callable[[], bool]
) -> None:
    """Reads the status topic until every one of ``batches`` has ended (completed, or not)."""
    waiting = {batch.batch_id for batch in batches}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + TOOL_TIMEOUT_S
        while waiting:
            if not alive() or time.monotonic() > deadline:
                raise ToolFailed(f"{len(waiting)} batches never ended")
            fetched = await consumer.getmany(timeout_ms=200)
            for record in (record for records in fetched.values() for record in records):
                event = BatchStatusEvent.model_validate_json(record.value or b"")
                if event.status in FINISHED:
                    waiting.discard(event.batch_id)
    finally:
        await consumer.stop()


def _peak_while_done(worker: Child, bootstrap: str, prefix: str, batches: list[Batch]) -> int:
    """Peak RSS of the worker from before ``batches`` are queued until all have ended: every
    result chunk out, and every batch counted and finished by the progress agent."""
    names = TopicNames(prefix)
    with PeakRss(worker.process.pid) as rss:
        asyncio.run(produce(bootstrap, names.requests, batches))
        outputs = asyncio.run(read_outputs(bootstrap, names.results, batches, worker.alive))
        asyncio.run(wait_finished(bootstrap, names.status, batches, worker.alive))
    check_outputs(outputs, batches)
    return rss.peak


def measure_rss(bootstrap: str, prefix: str, scratch: Path) -> RssFigures:
    asyncio.run(prepare_batchline_topics(bootstrap, prefix))
    data = _items(BATCH_ITEMS)
    warm = [make_batch(f"{prefix}-warm", data[:1], RSS_BATCH_SIZE)]
    one = [make_batch(f"{prefix}-one", data, RSS_BATCH_SIZE)]
    many = [make_batch(f"{prefix}-many-{n}", data, RSS_BATCH_SIZE) for n in range(RSS_BATCHES)]
    worker = spawn_worker(batchline_env(bootstrap, prefix, scratch / prefix))
    try:
        # Started and through its first batch before sampling, its Faust agents and table
        # store included (they start after the transform consumer, and load RocksDB on first
        # use): the figures are what queued batches add, not what start-up costs.
        _peak_while_done(worker, bootstrap, prefix, warm)
        idle = psutil.Process(worker.process.pid).memory_info().rss
        peak_one = _peak_while_done(worker, bootstrap, prefix, one)
        peak_many = _peak_while_done(worker, bootstrap, prefix, many)
    except ToolFailed as exc:
        raise ToolFailed(f"batchline worker: {exc}") from None
    finally:
        worker.stop()
    return RssFigures(idle, peak_one, peak_many)


# --- table -------------------------------------------------------------------------------------


def _spread(figures: list[float]) -> str:
    return f"  (rounds: {', '.join(f'{figure:,.0f}' for figure in figures)})"


def print_tables(
    http: HttpFigures | str, loops: list[ToolRun] | str, rss: RssFigures | str
) -> None:
    print("API and worker (1 worker, 1 API process, SQLite store, 4 partitions)")
    if isinstance(http, str):
        print(f"latency and end-to-end rows: failed: {http}")
    else:
        print(f"{'':<36}{'p50 (ms)':>10}{'p99 (ms)':>10}")
        for label, samples in (
            (f"1-item batch, sync, {len(http.latency_ms)} samples", http.latency_ms),
            (f"raw Kafka round trip, {len(http.rtt_ms)} samples", http.rtt_ms),
        ):
            print(f"{label:<36}{percentile(samples, 50):>10.1f}{percentile(samples, 99):>10.1f}")
        ratios = [percentile(http.latency_ms, q) / percentile(http.rtt_ms, q) for q in (50, 99)]
        print(f"{'1-item batch / raw round trip':<36}{ratios[0]:>9.1f}x{ratios[1]:>9.1f}x")
        print()
        print(
            f"end to end over HTTP: {CLIENTS} clients x {BATCHES_PER_CLIENT} batches x "
            f"{BATCH_ITEMS:,} items, batch_size {HTTP_BATCH_SIZE}, respond-async + polling "
            f"every {POLL_INTERVAL_S} s; each figure the median of {ROUNDS} rounds, taken in turns"
        )
        rate = statistics.median(http.items_per_s)
        print(f"{'Batchline over HTTP (items / wall time)':<52}{rate:>12,.0f} items/s")
        print(_spread(http.items_per_s))
        # The wall time is the last batch's: say when the others finished, so that one
        # straggler (a batch left to the reconciler, say) is seen for what it is.
        first, median, last = http.done_s[0], statistics.median(http.done_s), http.done_s[-1]
        print(
            f"  median round: batches seen completed after {first:.1f} s (first), "
            f"{median:.1f} s (median), {last:.1f} s (last) of the wall time"
        )
    if isinstance(loops, str):
        print(f"plain aiokafka loop on the same chunks: failed: {loops}")
    else:
        label = f"plain aiokafka loop, the same {_chunks()} chunks"
        loop_rate = statistics.median(loop.streamed for loop in loops)
        print(f"{label:<52}{loop_rate:>12,.0f} items/s")
        print(_spread([loop.streamed for loop in loops]))
        producer = statistics.median(loop.producer for loop in loops)
        print(f"  (the loop's rule: {RULE_STREAMED};")
        print(f"  the driver produced them at {producer:,.0f} items/s)")
        if not isinstance(http, str):
            ratio = statistics.median(http.items_per_s) / loop_rate
            print(f"{'Batchline over HTTP / aiokafka loop':<52}{ratio:>13.2f}x")
    print()
    print(
        f"worker memory: peak RSS of one worker process (sampled every 0.1 s) while batches of "
        f"{BATCH_ITEMS:,} items in chunks of {RSS_BATCH_SIZE} are processed"
    )
    if isinstance(rss, str):
        print(f"failed: {rss}")
        return
    print(f"{'idle, after a warm-up batch':<36}{rss.idle / MIB:>10.0f} MiB")
    print(f"{'1 batch queued':<36}{rss.one / MIB:>10.0f} MiB")
    print(f"{f'{RSS_BATCHES} batches queued at once':<36}{rss.many / MIB:>10.0f} MiB")
    print(f"{f'{RSS_BATCHES} batches / 1 batch':<36}{rss.many / rss.one:>13.2f}x")


def _chunks() -> int:
    return CLIENTS * BATCHES_PER_CLIENT * -(-BATCH_ITEMS // HTTP_BATCH_SIZE)


def _first_line(exc: ToolFailed) -> str:
    print(f"bench_http: {exc}", file=sys.stderr, flush=True)
    return str(exc).splitlines()[0]


def main(bootstrap: str | None = None) -> list[str]:
    """Measures and prints the tables; starts (and stops) a broker unless one is given.
    Returns the parts that failed (their rows say so too)."""
    stop_children_on_sigterm()
    http: HttpFigures | str
    loops: list[ToolRun] | str = []
    rss: RssFigures | str
    with tempfile.TemporaryDirectory(prefix="batchline-bench-http-") as tmp:
        scratch = Path(tmp)
        with local_kafka(bootstrap, scratch) as kafka:
            run = run_id()

            def loop_turn(round_: int) -> None:
                nonlocal loops
                if isinstance(loops, str):
                    return  # failed in an earlier round
                try:
                    loops.append(measure_loop(kafka, f"bench-{run}-loop-r{round_}", scratch))
                except ToolFailed as exc:
                    loops = _first_line(exc)

            # One after the other, so that no part shares the two cores with another.
            try:
                http = measure_service(kafka, f"bench-{run}-http", scratch, loop_turn)
            except ToolFailed as exc:
                http = _first_line(exc)
            if not loops:  # the service failed before the loop's first turn
                loop_turn(0)
            try:
                rss = measure_rss(kafka, f"bench-{run}-rss", scratch)
            except ToolFailed as exc:
                rss = _first_line(exc)
    print_tables(http, loops, rss)
    sys.stdout.flush()
    parts = {"HTTP and latency": http, "aiokafka loop (HTTP work)": loops, "worker memory": rss}
    return [part for part, figures in parts.items() if isinstance(figures, str)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    sys.exit(1 if main(parser.parse_args().bootstrap) else 0)
