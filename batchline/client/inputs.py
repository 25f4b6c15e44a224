"""Reading the items of a batch from a JSON array, NDJSON or CSV file (or stdin).

JSON goes through ``schemas.jsonio`` so that ``"amt": 100.50`` is read as ``Decimal("100.50")``
and sent on unchanged: money never passes through a float on its way to the API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from batchline.client.errors import InputError
from schemas import jsonio
from schemas.http import MAX_ITEMS

STDIN = "-"
BOM = b"\xef\xbb\xbf"


class InputFormat(StrEnum):
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


FORMAT_BY_SUFFIX = {
    ".json": InputFormat.json,
    ".ndjson": InputFormat.ndjson,
    ".jsonl": InputFormat.ndjson,
    ".csv": InputFormat.csv,
}


def detect_format(source: str, given: InputFormat | None) -> InputFormat:
    if given is not None:
        return given
    if source == STDIN:
        raise InputError("reading items from stdin needs --format json, ndjson or csv")
    found = FORMAT_BY_SUFFIX.get(Path(source).suffix.lower())
    if found is None:
        raise InputError(
            f"{source}: cannot tell the format from the file name; "
            "name it .json, .ndjson, .jsonl or .csv, or pass --format"
        )
    return found


def read_items(
    source: str, given: InputFormat | None = None, stdin: IO[bytes] | None = None
) -> list[Any]:
    """The items of ``source`` (a path, or ``-`` for ``stdin``), in file order."""
    fmt = detect_format(source, given)
    name = "stdin" if source == STDIN else source
    if source == STDIN:
        if stdin is None:
            raise InputError("no stdin to read items from")
        return _parse(fmt, stdin, name)
    try:
        with open(source, "rb") as stream:
            return _parse(fmt, stream, name)
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a file of items") from None
    except PermissionError:
        raise InputError(f"{source}: permission denied") from None


def _parse(fmt: InputFormat, stream: IO[bytes], name: str) -> list[Any]:
    if fmt is InputFormat.json:
        items = parse_json_array(stream.read(), name)
    elif fmt is InputFormat.ndjson:
        items = parse_ndjson(stream, name)
    else:
        items = parse_csv(stream, name)
    if not items:
        raise InputError(f"{name}: no items; nothing to submit")
    return items


def _check_count(count: int, name: str) -> None:
    # Stop reading early: the API refuses more anyway, and a huge file should not fill memory.
    if count > MAX_ITEMS:
        raise InputError(
            f"{name}: more than {MAX_ITEMS} items, the most one batch holds; "
            f"split the file (e.g. split -l {MAX_ITEMS}) and submit each part"
        )


def parse_json_array(data: bytes, name: str) -> list[Any]:
    try:
        document = jsonio.loads(data.removeprefix(BOM))
    except jsonio.JSONDecodeError as exc:
        raise InputError(f"{name}: {exc}") from None
    if not isinstance(document, list):
        raise InputError(
            f"{name}: expected a JSON array of items, found a {type(document).__name__}; "
            "for one object per line use .ndjson or --format ndjson"
        )
    _check_count(len(document), name)
    return document


def parse_ndjson(lines: Iterable[bytes], name: str) -> list[Any]:
    items: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(BOM)
        if not line.strip():
            continue  # blank lines (and the final newline) separate nothing
        try:
            items.append(jsonio.loads(line))
        except jsonio.JSONDecodeError as exc:
            raise InputError(f"{name} row {len(items)} (line {number}): {exc}") from None
        _check_count(len(items), name)
    return items


def parse_csv(stream: IO[bytes], name: str) -> list[dict[str, str]]:
    """A header row, then one item per row; every value stays the string it was in the file."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    # Rows count from 0 after the header, as the API counts them; the line is the file's.
    header: list[str] | None = None
    items: list[dict[str, str]] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        _check_header(header, name)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{name} row {len(items)} (line {reader.line_num}): {len(row)} values "
                    f"for {len(header)} columns in the header"
                )
            items.append(dict(zip(header, row, strict=True)))
            _check_count(len(items), name)
        return items
    except csv.Error as exc:
        where = f"row {len(items)} (line {reader.line_num})" if header else "line 1 (the header)"
        raise InputError(f"{name} {where}: malformed CSV: {exc}") from None
    except UnicodeDecodeError:
        where = f"row {len(items)} (line {reader.line_num + 1})" if header else "line 1"
        raise InputError(f"{name} {where}: not UTF-8 text") from None
    finally:
        text.detach()  # the caller closes the underlying stream


def _check_header(header: list[str], name: str) -> None:
    if any(not column for column in header):
        raise InputError(f"{name} line 1 (the header): an empty column name")
    if len(set(header)) != len(header):
        raise InputError(f"{name} line 1 (the header): a column name repeated")
