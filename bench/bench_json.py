"""Benchmark: JSON libraries on Batchline's own payloads, and whether each keeps money exact.

Run as ``python -m bench.bench_json``. Two payloads of ``ROW_COUNT`` rows:

* encode: seed result rows ``{"timestamp", "amount": Decimal, "email", "phone"}`` (what the API
  answers and the store keeps);
* decode: one ChunkEvent message of seed input items ``{"ts", "amt", "email", "phone"}`` as
  ``streams.chunking.iter_chunks`` writes it, ``amt`` a JSON number with a fraction (``100.50``)
  in half the rows and a string in the other half (what a worker reads).

Each figure is rows/s, the best of ``REPEATS`` timed runs (the candidates take turns). The
"100.50 kept" columns are checked on the bytes and values each library produced: row 0's amount
is ``Decimal("100.50")``, and it must be written as the JSON number ``100.50`` and read back as
``Decimal("100.50")`` (not ``100.5``).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
import simplejson

from schemas import jsonio

ROW_COUNT = 1_000
REPEATS = 5
MIN_RUN_S = 0.05
EXACT_AMOUNT = Decimal("100.50")
EXACT_TEXT = b"100.50"


def result_rows(count: int) -> list[dict[str, Any]]:
    """Seed output rows; row 0 carries Decimal("100.50")."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for index in range(count):
        cents = 10_050 + index * 37
        moment = start + timedelta(seconds=index * 7)
        rows.append(
            {
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "amount": Decimal(cents).scaleb(-2),  # two places kept: Decimal("100.50")
                "email": f"u***{index % 10}@example{index % 50}.com",
                "phone": f"***-{index % 10_000:04d}",
            }
        )
    return rows


def input_items(count: int) -> list[dict[str, Any]]:
    """Seed input items; amt is a Decimal (a JSON number) in even rows, a string in odd rows."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = []
    for index in range(count):
        cents = 10_050 + index * 37
        amount = Decimal(cents).scaleb(-2)
        items.append(
            {
                "ts": (start + timedelta(seconds=index * 7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "amt": amount if index % 2 == 0 else str(amount),
                "email": f"user.{index}@example{index % 50}.com",
                "phone": f"+1 (555) {index % 1000:03d}-{index % 10_000:04d}",
            }
        )
    return items


def chunk_message(items: list[dict[str, Any]]) -> bytes:
    """The requests-topic value of one chunk holding every item, as the API writes it."""
    from streams.chunking import iter_chunks

    ((_key, value),) = iter_chunks(
        batch_id="bench-json",
        items=items,
        batch_size=len(items),
        parallel=False,
        pipeline="default",
        on_invalid="reject",
    )
    return value


# ---------------------------------------------------------------------------------------------
# The candidates


@dataclass(frozen=True)
class Candidate:
    name: str
    how: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    note: str = ""


def _simplejson_candidate() -> Candidate:
    def encode(value: Any) -> bytes:
        return simplejson.dumps(
            value, use_decimal=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()

    def decode(data: bytes) -> Any:
        return simplejson.loads(data, use_decimal=True)

    return Candidate("simplejson", "use_decimal=True (the previous codec)", encode, decode)


def _msgspec_candidate() -> Candidate:
    encoder = msgspec.json.Encoder(decimal_format="number")
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=Decimal)
    return Candidate(
        "msgspec",
        'Encoder(decimal_format="number"), Decoder(float_hook=Decimal)',
        encoder.encode,
        decoder.decode,
    )


def _stdlib_candidate() -> Candidate:
    # json has no Decimal output: default= turns each Decimal into a string holding a random
    # marker around its text, and a regular expression then removes the quotes and markers.
    marker = secrets.token_hex(8)
    quoted = re.compile(f'"{marker}([^"]*){marker}"')

    def default(value: Any) -> Any:
        if isinstance(value, Decimal) and value.is_finite():
            return f"{marker}{value}{marker}"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    def encode(value: Any) -> bytes:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
        )
        return quoted.sub(r"\1", text).encode()

    def decode(data: bytes) -> Any:
        return json.loads(data, parse_float=Decimal)

    return Candidate(
        "json (stdlib)",
        "parse_float=Decimal; Decimal out via default= + marker regex",
        encode,
        decode,
    )


def _orjson_candidate() -> Candidate | None:
    try:
        import orjson
    except ImportError:
        return None

    def encode(value: Any) -> bytes:
        encoded: bytes = orjson.dumps(value, default=float)  # Decimal alone raises TypeError
        return encoded

    return Candidate(
        "orjson",
        "dumps(default=float), loads: no Decimal either way",
        encode,
        orjson.loads,
        note=_orjson_refusal(orjson.dumps),
    )


def _orjson_refusal(dumps: Callable[[Any], bytes]) -> str:
    try:
        dumps(EXACT_AMOUNT)
    except TypeError as exc:
        return f"orjson.dumps(Decimal) -> TypeError: {exc}"
    return "orjson.dumps(Decimal) was accepted"


def _jsonio_candidate() -> Candidate:
    return Candidate("schemas.jsonio", "the project codec as switched", jsonio.dumps, jsonio.loads)


def candidates() -> list[Candidate]:
    found = [_simplejson_candidate(), _msgspec_candidate(), _stdlib_candidate()]
    orjson_candidate = _orjson_candidate()
    if orjson_candidate is not None:
        found.append(orjson_candidate)
    found.append(_jsonio_candidate())
    return found


# ---------------------------------------------------------------------------------------------
# Checks and timing


def encode_exactness(candidate: Candidate, rows: list[dict[str, Any]]) -> str:
    """'yes' when row 0's Decimal("100.50") is written as the number 100.50, else what was."""
    assert rows[0]["amount"] == EXACT_AMOUNT and str(rows[0]["amount"]) == "100.50"
    try:
        written = candidate.encode(rows)
    except (TypeError, ValueError) as exc:
        return f"no: {type(exc).__name__}"
    found = re.search(rb'"amount":([^,}]*)', written)
    text = found.group(1) if found else b"?"
    return "yes" if text == EXACT_TEXT else f"no: {text.decode()}"


def decode_exactness(candidate: Candidate, message: bytes) -> str:
    """'yes' when the number 100.50 of item 0 reads as Decimal("100.50") and the string of
    item 1 stays a string, else what was read."""
    assert b'"amt":100.50,' in message, "item 0 should carry the JSON number 100.50"
    items = candidate.decode(message)["items"]
    first, second = items[0]["amt"], items[1]["amt"]
    if not isinstance(second, str):
        return f"no: string read as {type(second).__name__}"
    if isinstance(first, Decimal) and str(first) == "100.50":
        return "yes"
    return f"no: {first!r}"


def best_rates(operations: list[Callable[[], object]], rows: int) -> list[float]:
    """rows/s of each operation: the best of REPEATS runs, each repeating it for at least
    MIN_RUN_S. The runs take turns (one of each operation per round), so that a busy spell on
    the machine slows every candidate alike instead of the one measured at that moment."""
    calls = []
    for operation in operations:
        started = time.perf_counter()
        operation()
        calls.append(max(1, int(MIN_RUN_S / max(time.perf_counter() - started, 1e-9))))
    best = [float("inf")] * len(operations)
    for _ in range(REPEATS):
        for index, (operation, count) in enumerate(zip(operations, calls, strict=True)):
            started = time.perf_counter()
            for _ in range(count):
                operation()
            best[index] = min(best[index], (time.perf_counter() - started) / count)
    return [rows / seconds for seconds in best]


@dataclass(frozen=True)
class Measured:
    candidate: Candidate
    encode_rate: float
    encode_exact: str
    decode_rate: float
    decode_exact: str

    @property
    def exact(self) -> bool:
        return self.encode_exact == "yes" and self.decode_exact == "yes"


def measure(found: list[Candidate], rows: list[dict[str, Any]], message: bytes) -> list[Measured]:
    exactness = [
        (encode_exactness(candidate, rows), decode_exactness(candidate, message))
        for candidate in found
    ]
    operations: list[Callable[[], object]] = []
    for candidate in found:
        operations.append(partial(candidate.encode, rows))
        operations.append(partial(candidate.decode, message))
    rates = best_rates(operations, len(rows))
    return [
        Measured(candidate, rates[2 * index], encode_exact, rates[2 * index + 1], decode_exact)
        for index, (candidate, (encode_exact, decode_exact)) in enumerate(
            zip(found, exactness, strict=True)
        )
    ]


def print_table(results: list[Measured], count: int) -> None:
    header = (
        f"{'library':<15} {'encode rows/s':>14} {'100.50 kept':<12} "
        f"{'decode rows/s':>14} {'100.50 kept':<17} verdict"
    )
    print(f"{count:,} rows per payload, best of {REPEATS} runs")
    print(header)
    print("-" * len(header))
    exact = [measured for measured in results if measured.exact]
    libraries = [m for m in exact if m.candidate.name != "schemas.jsonio"]
    fastest = max(libraries, key=lambda m: m.encode_rate + m.decode_rate, default=None)
    for measured in results:
        if measured.candidate.name == "schemas.jsonio":
            verdict = "the project codec"
        elif not measured.exact:
            verdict = "excluded: not exact"
        elif measured is fastest:
            verdict = "fastest exact"
        else:
            verdict = "exact"
        print(
            f"{measured.candidate.name:<15} {measured.encode_rate:>14,.0f} "
            f"{measured.encode_exact:<12} {measured.decode_rate:>14,.0f} "
            f"{measured.decode_exact:<17} {verdict}"
        )
    print()
    for measured in results:
        note = f"; {measured.candidate.note}" if measured.candidate.note else ""
        print(f"{measured.candidate.name}: {measured.candidate.how}{note}")


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=ROW_COUNT)
    count = max(2, parser.parse_args().rows)
    rows = result_rows(count)
    message = chunk_message(input_items(count))
    print_table(measure(candidates(), rows, message), count)


if __name__ == "__main__":
    main()
