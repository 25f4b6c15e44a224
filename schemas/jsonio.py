"""JSON on the wire with exact decimals.

Money must never pass through a float: decoding reads every JSON number with a fraction or
exponent as ``Decimal``, and encoding writes a ``Decimal`` as a JSON number with its scale kept
(``Decimal("100.50")`` is written ``100.50``). Every byte Batchline reads or writes (HTTP bodies,
Kafka payloads, stored results) goes through these two functions.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import simplejson


class JSONDecodeError(ValueError):
    """The bytes are not one well-formed JSON document."""


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's decoder accepts them unless told otherwise.
    raise JSONDecodeError(f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    try:
        return simplejson.loads(data, use_decimal=True, parse_constant=_reject_constant)
    except (simplejson.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        # The message names the position only; it never echoes the document.
        raise JSONDecodeError(f"Malformed JSON: {type(exc).__name__} at {_position(exc)}") from None


def _position(exc: Exception) -> str:
    pos = getattr(exc, "pos", None)
    return f"character {pos}" if pos is not None else "an unknown position"


def _encode_other(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return simplejson.dumps(
        value,
        use_decimal=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_encode_other,
    ).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


__all__ = ["Decimal", "JSONDecodeError", "dumps", "dumps_str", "loads"]
