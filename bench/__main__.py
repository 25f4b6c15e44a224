"""`make bench`: every benchmark, each printing its table of measured figures.

Everything the benchmarks print is also written to bench/results.md, under a description of the
machine, so that a figure is never read without the machine it was measured on. The streaming
core and the HTTP benchmarks share one local broker; bench_service starts its own.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import TextIO

from batchline.broker import kafka_version
from bench import bench_core, bench_http, bench_service, bench_transforms
from bench.anchors.harness import local_kafka
from bench.anchors.processes import stop_children_on_sigterm

RESULTS = Path(__file__).with_name("results.md")


class _Tee(StringIO):
    """Keeps a copy of what is printed and passes it on to the terminal as it comes."""

    def __init__(self, terminal: TextIO) -> None:
        super().__init__()
        self._terminal = terminal

    def write(self, text: str) -> int:
        self._terminal.write(text)
        return super().write(text)

    def flush(self) -> None:
        self._terminal.flush()


@contextmanager
def _captured() -> Iterator[_Tee]:
    # Only what this process prints: the tools' and workers' own output goes to the terminal.
    tee = _Tee(sys.stdout)
    with redirect_stdout(tee):
        yield tee


def _first(path: str, field: str) -> str:
    for line in Path(path).read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    return "unknown"


def machine() -> list[str]:
    memory_kib = int(_first("/proc/meminfo", "MemTotal").split()[0])
    return [
        f"- CPUs available (nproc): {len(os.sched_getaffinity(0))}",
        f"- CPU: {_first('/proc/cpuinfo', 'model name')}",
        f"- memory: {memory_kib / 1024 / 1024:.1f} GiB (MemTotal)",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_version()}",
        f"- Kafka: {kafka_version()} (the local broker Batchline provisions), on 127.0.0.1",
    ]


def write_results(printed: str, started: datetime, failed: list[str]) -> None:
    incomplete = [f"**Incomplete**: these parts failed: {', '.join(failed)}.", ""] if failed else []
    lines = [
        "# Benchmark results",
        "",
        *incomplete,
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `make bench` on:",
        "",
        *machine(),
        "",
        "The machine may be shared and noisy: compare figures within one run (the ratios),",
        "not across runs. What each table measures is in the docstrings of bench/bench_*.py.",
        "",
        "```",
        printed.rstrip(),
        "```",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


@contextmanager
def _section(title: str, failed: list[str]) -> Iterator[None]:
    """Prints the section's title; a section that raises is reported and the next one runs."""
    print(f"\n== {title}")
    try:
        yield
    # bench_service reports a wrong result with SystemExit; one broken part must not hide the
    # others' figures.
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        traceback.print_exc()
        print(f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        failed.append(title.split(" (")[0])


def main() -> int:
    stop_children_on_sigterm()
    started = datetime.now(UTC)
    failed: list[str] = []
    with _captured() as printed:
        with _section("transform engine (python -m bench.bench_transforms)", failed):
            bench_transforms.main()
        with _section("running service (python -m bench.bench_service)", failed):
            bench_service.main()
        with tempfile.TemporaryDirectory(prefix="batchline-bench-") as scratch:
            with local_kafka(None, Path(scratch)) as bootstrap:
                with _section("streaming core (python -m bench.bench_core)", failed):
                    core = bench_core.main(bootstrap)
                    failed += [f"{tool}, chunks of {size:,}" for tool, size in core.failures]
                with _section("over HTTP, and worker memory (python -m bench.bench_http)", failed):
                    failed += bench_http.main(bootstrap)
    write_results(printed.getvalue().lstrip("\n"), started, failed)
    print(f"\nwritten to {RESULTS}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
