"""Benchmark: items/s of ``default@1`` against a plain hand-written function doing the same work.

Run as ``python -m bench.bench_transforms``. Records are decoded from JSON bytes, as the API and the
workers receive them, so every string is a fresh object whose hash is not yet computed. Each figure
is the best of ``REPEATS`` passes over ``RECORD_COUNT`` records in chunks of ``CHUNK_SIZE``, and
each pass starts with empty caches, so cold misses are included.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from schemas import jsonio
from transforms import PipelineRegistry

RECORD_COUNT = 100_000
CHUNK_SIZE = 1_000
REPEATS = 3
CACHE_SIZE = 65_536
SEED = 20240101

_NON_DIGIT = re.compile(r"\D")


def baseline(record: dict[str, Any]) -> dict[str, Any]:
    """The four transforms of the seed written by hand, as a reasonable engineer would."""
    moment = datetime.fromisoformat(record["ts"]).astimezone(UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    amount = Decimal(str(record["amt"]).replace(",", "").lstrip("$"))
    local, domain = record["email"].rsplit("@", 1)
    tail = local[-1] if len(local) > 2 else ""
    email = f"{local[0]}***{tail}@{domain}"
    phone = "***-" + _NON_DIGIT.sub("", record["phone"])[-4:]
    return {"timestamp": timestamp, "amount": amount, "email": email, "phone": phone}


def _record(index: int, rng: random.Random) -> dict[str, Any]:
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=index * 7)
    if index % 5:
        ts = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        ts = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    cents = index * 37 + rng.randrange(100)
    amt = (
        f"{cents // 100}.{cents % 100:02d}"
        if index % 10
        else f"${cents // 100:,}.{cents % 100:02d}"
    )
    digits = f"{index:07d}"
    phone = (
        f"555-{digits[-4:]}{digits[:3]}",
        f"+1 (555) {digits[:3]}-{digits[3:]}",
        f"555{digits}",
    )[index % 3]
    email = f"user.{index}.{rng.randrange(1000)}@example{index % 50}.com"
    return {"ts": ts, "amt": amt, "email": email, "phone": phone}


def make_records(distinct: int, count: int = RECORD_COUNT) -> list[Any]:
    """``count`` records drawn from ``distinct`` distinct ones, decoded from JSON bytes."""
    rng = random.Random(SEED)
    pool = [_record(index, rng) for index in range(distinct)]
    records = pool if distinct == count else [pool[rng.randrange(distinct)] for _ in range(count)]
    decoded: list[Any] = jsonio.loads(jsonio.dumps(records))
    return decoded


def _chunks(records: list[Any]) -> list[tuple[int, list[Any]]]:
    return [
        (start, records[start : start + CHUNK_SIZE]) for start in range(0, len(records), CHUNK_SIZE)
    ]


def _best_rate(make_pass: Callable[[], Callable[[], None]], count: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        one_pass = make_pass()  # fresh state (empty caches) outside the timed region
        started = time.perf_counter()
        one_pass()
        best = min(best, time.perf_counter() - started)
    return count / best


def _engine_pass(records: list[Any], cache_size: int) -> Callable[[], Callable[[], None]]:
    chunks = _chunks(records)

    def make_pass() -> Callable[[], None]:
        registry = PipelineRegistry.load(None, hash_secret=b"bench", cache_size=cache_size)
        pipeline = registry.get("default@1")

        def one_pass() -> None:
            for start, chunk in chunks:
                outcome = pipeline.run(chunk, start)
                assert not outcome.errors

        return one_pass

    return make_pass


def _baseline_pass(records: list[Any]) -> Callable[[], Callable[[], None]]:
    chunks = _chunks(records)

    def one_pass() -> None:
        for _start, chunk in chunks:
            [baseline(record) for record in chunk]

    return lambda: one_pass


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=RECORD_COUNT)
    count = parser.parse_args().records
    datasets = {
        "all distinct": make_records(count, count),
        "10% distinct": make_records(count // 10, count),
    }
    rows: list[tuple[str, str, str, float, float]] = []
    for label, records in datasets.items():
        check = (
            PipelineRegistry.load(None, hash_secret=b"bench").get("default@1").run(records[:100])
        )
        assert check.results == [baseline(record) for record in records[:100]], "outputs differ"
        base = _best_rate(_baseline_pass(records), count)
        rows.append(("hand-written", label, "-", base, 1.0))
        for cache_label, size in (("off", 0), ("on", CACHE_SIZE)):
            rate = _best_rate(_engine_pass(records, size), count)
            rows.append(("default@1", label, cache_label, rate, rate / base))
    header = f"{'pipeline':<14} {'data':<14} {'cache':<6} {'items/s':>12} {'ratio':>7}"
    print(f"{count:,} records, chunks of {CHUNK_SIZE:,}, best of {REPEATS}")
    print(header)
    print("-" * len(header))
    for pipeline, data, cache, rate, ratio in rows:
        print(f"{pipeline:<14} {data:<14} {cache:<6} {rate:>12,.0f} {ratio:>6.2f}x")


if __name__ == "__main__":
    main()
