"""Timestamp parsing and writing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from transforms.invalid import Invalid
from transforms.timestamps import EPOCH_MS_THRESHOLD, make_parse, make_parse_and_format

to_utc = make_parse_and_format(None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00z", "2024-01-01T00:00:00Z"),
        ("2024-01-01t00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z"),
        ("2023-12-31T19:00:00-0500", "2024-01-01T00:00:00Z"),
        ("2024-01-01T05:30:00+05:30", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.500Z", "2024-01-01T00:00:00.5Z"),
        ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.123456789Z", "2024-01-01T00:00:00.123456Z"),
        ("2024-01-01 00:00:00", "2024-01-01T00:00:00Z"),
        ("2024-01-01 12:34", "2024-01-01T12:34:00Z"),
        ("2024-01-01", "2024-01-01T00:00:00Z"),
        ("  2024-01-01T00:00:00Z ", "2024-01-01T00:00:00Z"),
        (1704067200, "2024-01-01T00:00:00Z"),
        ("1704067200", "2024-01-01T00:00:00Z"),
        (Decimal("1704067200.25"), "2024-01-01T00:00:00.25Z"),
        (1704067200123, "2024-01-01T00:00:00.123Z"),
        ("1704067200123", "2024-01-01T00:00:00.123Z"),
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (1.5, "1970-01-01T00:00:01.5Z"),
    ],
)
def test_accepted_forms_are_written_as_utc(raw: Any, expected: str) -> None:
    assert to_utc(raw) == expected


def test_epoch_seconds_and_milliseconds_are_told_apart_by_magnitude() -> None:
    below, at = EPOCH_MS_THRESHOLD - 1, EPOCH_MS_THRESHOLD
    assert to_utc(below) == "5138-11-16T09:46:39Z"  # still seconds
    assert to_utc(at) == "1973-03-03T09:46:40Z"  # milliseconds from here on


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "Invalid timestamp format"),
        ("", "Invalid timestamp format"),
        ("2024-02-30T00:00:00Z", "Invalid timestamp format"),
        ("2024-01-01T24:00:00Z", "Invalid timestamp format"),
        ("2024-01-01X00:00:00", "Invalid timestamp format"),
        ("2024-W01-1", "Invalid timestamp format"),
        ("2024-01-01T00:00:00+25:00", "Invalid timestamp format"),
        ("NaN", "Invalid timestamp format"),
        (Decimal("NaN"), "Invalid timestamp format"),
        (True, "Invalid timestamp format"),
        ([2024], "Invalid timestamp format"),
        ("9999-12-31T23:00:00-05:00", "Timestamp out of range"),
        (Decimal("1E+999999"), "Timestamp out of range"),
        (10**20, "Timestamp out of range"),
    ],
)
def test_invalid_timestamps_are_typed_errors(raw: Any, reason: str) -> None:
    result = to_utc(raw)
    assert isinstance(result, Invalid) and result.reason == reason


def test_naive_times_are_read_in_the_rules_zone() -> None:
    paris = make_parse_and_format("Europe/Paris")
    assert paris("2024-07-01T12:00:00") == "2024-07-01T10:00:00Z"  # CEST, UTC+2
    assert paris("2024-01-01") == "2023-12-31T23:00:00Z"  # CET, UTC+1
    assert paris("2024-07-01T12:00:00Z") == "2024-07-01T12:00:00Z"  # explicit offsets win
    assert paris(1704067200) == "2024-01-01T00:00:00Z"  # epochs are absolute


def test_parse_gives_an_aware_utc_datetime() -> None:
    assert make_parse(None)("2024-01-01T01:00:00+01:00") == datetime(2024, 1, 1, tzinfo=UTC)
