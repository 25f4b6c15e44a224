"""A batch's results as CSV, streamed: one header row, then one line per result.

The columns are every field any result has, in the order they first appear. Finding them
takes one pass over the results before the lines are written, keeping only the field names,
so memory stays flat however many rows a batch has.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from schemas import jsonio

CSV = "text/csv"
# Lines are gathered into blocks of about this many bytes before they are sent.
BLOCK_BYTES = 64 * 1024

# A batch's results (each a JSON object) from the start, each time it is called.
Results = Callable[[], AsyncIterator[dict[str, Any]]]


def cell(value: Any) -> str:
    """One field as text: decimals keep their scale, JSON's literals stay JSON's."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        return str(value)
    return jsonio.dumps(value).decode()


async def columns(results: Results) -> list[str]:
    seen: dict[str, None] = {}
    async for item in results():
        seen.update(dict.fromkeys(item))
    return list(seen)


async def csv_lines(results: Results) -> AsyncIterator[bytes]:
    """The header and the rows (RFC 4180, CRLF); ``results`` is called twice, the first time
    for the columns. No results: an empty file, since there are no fields to name."""
    names = await columns(results)
    if not names:
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    async for item in results():
        writer.writerow([cell(item.get(name)) for name in names])
        if buffer.tell() >= BLOCK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
