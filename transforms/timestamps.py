"""Timestamps: parse the common shapes, normalize to UTC, write ``YYYY-MM-DDTHH:MM:SS[.f]Z``.

Accepted text: ISO 8601 / RFC 3339 extended form, ``YYYY-MM-DD`` optionally followed by ``T``,
``t`` or a space and ``HH:MM[:SS[.fraction]]``, optionally followed by ``Z``, ``z`` or an offset
``+HH:MM`` / ``+HHMM`` / ``+HH``. A fraction longer than microseconds is truncated. Numbers and
numeric text are epoch times: an absolute value below ``EPOCH_MS_THRESHOLD`` (1e11) is seconds,
anything else milliseconds. 1e11 seconds is the year 5138 and 1e11 milliseconds is 1973-03-03, so
the rule misreads only millisecond times before March 1973.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo

from transforms.invalid import INVALID_TIMESTAMP, TIMESTAMP_OUT_OF_RANGE, Invalid

EPOCH_MS_THRESHOLD: Final = 100_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_S: Final = 1_000_000
_MICROS_PER_MS: Final = 1_000
_EPOCH_LIMIT: Final[int] = 10**16  # milliseconds; the year 9999 is about 2.5e14

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)
_EPOCH_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)

TimestampStep = Callable[[Any], "datetime | Invalid"]


def format_utc(moment: datetime) -> str:
    """Write an aware datetime as UTC ``YYYY-MM-DDTHH:MM:SSZ``, with a fraction only if non-zero."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # %-formatting measured twice as fast as isoformat() or f-strings here (it is the hot path).
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )
    if moment.microsecond:
        text += (".%06d" % moment.microsecond).rstrip("0")  # noqa: UP031
    return text + "Z"


def _from_epoch(number: Decimal | int) -> datetime | Invalid:
    magnitude = number if number >= 0 else -number
    if magnitude >= _EPOCH_LIMIT:
        # Checked before any arithmetic so that 1e999999 costs nothing and cannot overflow.
        return TIMESTAMP_OUT_OF_RANGE
    per_unit = _MICROS_PER_S if magnitude < EPOCH_MS_THRESHOLD else _MICROS_PER_MS
    if isinstance(number, int):
        micros = number * per_unit
    else:
        micros = int((number * per_unit).to_integral_value(rounding=ROUND_FLOOR))
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return TIMESTAMP_OUT_OF_RANGE


def _from_text(text: str, zone: tzinfo) -> datetime | Invalid:
    # Most text is ISO 8601 that the C parser reads; it also takes forms we do not promise (other
    # separators, week dates), so it only gets text whose date and separator are already right.
    if (
        len(text) >= 10
        and text[4] == "-"
        and text[7] == "-"
        and (len(text) == 10 or text[10] in "T ")
    ):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass  # the pattern below decides, e.g. for a lower-case "t" or "z"
        else:
            return _to_utc(moment, zone)
    match = _ISO.fullmatch(text)
    if match is None:
        if _EPOCH_TEXT.fullmatch(text):
            return _from_epoch(Decimal(text))
        return INVALID_TIMESTAMP
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    offset: tzinfo = zone
    if zulu:
        offset = UTC
    elif sign:
        off_minutes = int(off_h) * 60 + int(off_m or 0)
        if int(off_h) > 23 or int(off_m or 0) > 59:
            return INVALID_TIMESTAMP
        offset = timezone(timedelta(minutes=-off_minutes if sign == "-" else off_minutes))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
            tzinfo=offset,
        )
        return moment.astimezone(UTC)
    except ValueError:
        return INVALID_TIMESTAMP
    except OverflowError:
        return TIMESTAMP_OUT_OF_RANGE


def _to_utc(moment: datetime, zone: tzinfo) -> datetime | Invalid:
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    except OverflowError:
        return TIMESTAMP_OUT_OF_RANGE


def _is_canonical_utc(text: str) -> bool:
    # "YYYY-MM-DDTHH:MM:SSZ": the separators sit every third character from index 4.
    return len(text) == 20 and text[19] == "Z" and text[4:17:3] == "--T::"


def make_parse(zone_name: str | None) -> TimestampStep:
    """A step that parses a raw value into an aware UTC datetime, naive times read in ``zone``."""
    zone: tzinfo = UTC if zone_name is None else ZoneInfo(zone_name)

    def parse_timestamp(value: Any) -> datetime | Invalid:
        cls = value.__class__
        if cls is str:
            return _from_text(value.strip(), zone)
        if cls is int:
            return _from_epoch(value)
        if cls is Decimal:
            return _from_epoch(value) if value.is_finite() else INVALID_TIMESTAMP
        if cls is float:
            try:
                return _from_epoch(Decimal(repr(value)))
            except (InvalidOperation, ValueError, OverflowError):
                return INVALID_TIMESTAMP
        return INVALID_TIMESTAMP

    return parse_timestamp


def make_parse_and_format(zone_name: str | None) -> Callable[[Any], str | Invalid]:
    """A step that parses and writes a timestamp at once, the common case worth a fast path."""
    parse = make_parse(zone_name)

    def timestamp(value: Any) -> str | Invalid:
        if value.__class__ is str and _is_canonical_utc(value):
            # Already in the output form: validating it is all that is left to do.
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return INVALID_TIMESTAMP
            return value
        moment = parse(value)
        return format_utc(moment) if isinstance(moment, datetime) else moment

    return timestamp


def make_truncate(unit: str) -> Callable[[datetime], datetime]:
    """A step that cuts a UTC datetime down to the start of its minute, hour or day."""

    def to_minute(moment: datetime) -> datetime:
        return moment.replace(second=0, microsecond=0)

    def to_hour(moment: datetime) -> datetime:
        return moment.replace(minute=0, second=0, microsecond=0)

    def to_day(moment: datetime) -> datetime:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)

    return {"minute": to_minute, "hour": to_hour, "day": to_day}[unit]
