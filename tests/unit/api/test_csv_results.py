"""Results as CSV: every field any result has, decimals with their scale, JSON's literals."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from api import csv_results
from api.csv_results import cell, csv_lines


def results_of(items: list[dict[str, Any]]) -> csv_results.Results:
    async def results() -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    return results


async def as_text(items: list[dict[str, Any]]) -> str:
    return b"".join([block async for block in csv_lines(results_of(items))]).decode()


def test_cells_keep_decimals_exact_and_write_json_literals_as_json() -> None:
    assert cell(Decimal("100.50")) == "100.50"
    assert cell(Decimal("1E+3")) == "1E+3"
    assert [cell(None), cell(True), cell(False), cell(7)] == ["", "true", "false", "7"]
    assert cell({"a": [1, Decimal("2.0")]}) == '{"a":[1,2.0]}'


async def test_the_header_is_every_field_in_first_seen_order_and_gaps_are_empty() -> None:
    text = await as_text([{"a": 1, "b": Decimal("0.10")}, {"c": "x,y", "a": 2}])
    assert text == 'a,b,c\r\n1,0.10,\r\n2,,"x,y"\r\n'


async def test_no_results_is_an_empty_file() -> None:
    assert await as_text([]) == ""


async def test_many_rows_come_in_blocks_that_parse_back() -> None:
    items = [{"row": row, "note": "é" * 40} for row in range(5_000)]
    blocks = [block async for block in csv_lines(results_of(items))]
    assert len(blocks) > 1
    assert max(len(block) for block in blocks) < 2 * csv_results.BLOCK_BYTES
    rows = list(csv.DictReader(io.StringIO(b"".join(blocks).decode())))
    assert [int(row["row"]) for row in rows] == list(range(5_000))


async def test_rows_are_sent_while_the_results_are_still_being_read() -> None:
    """Streamed: the first block goes out long before the last result is read (flat memory:
    one block and the field names at a time, however many rows)."""
    total = 10_000
    read = 0

    async def results() -> AsyncIterator[dict[str, Any]]:
        nonlocal read
        for row in range(total):
            read += 1
            yield {"row": row, "note": "x" * 40}

    read_at_each_block: list[int] = []
    async for _ in csv_lines(results):
        read_at_each_block.append(read)
    # The first pass reads every result for the columns; the second, block by block.
    first_rows_block = read_at_each_block[0] - total
    assert 0 < first_rows_block < total // 5
    assert len(read_at_each_block) > 5
