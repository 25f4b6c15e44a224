"""Money: exact ``Decimal`` from JSON numbers or numeric text, never a float.

Text may carry a sign, one currency symbol before or after the number, and thousands commas
grouped by three (``$1,234.56``, ``-€3``, ``100 €``). A decimal comma (``12,50``) is rejected
because it cannot be told apart from a thousands separator. The output keeps the input's scale:
``"100.50"`` becomes ``Decimal("100.50")``, which ``schemas.jsonio.dumps`` writes as ``100.50``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import Any, Final

from transforms.invalid import INVALID_NUMBER, NUMBER_OUT_OF_RANGE, Invalid

# Money beyond 10**40 is a data error, and bounding it keeps rounding cheap and overflow-free.
MAX_ADJUSTED_EXPONENT: Final = 40
CURRENCY_SYMBOLS: Final = "$€£¥₹₩₽₺₪₫฿₱₦₴₡₲₵₸"

# Text made of these characters only is tried as a plain number first; Decimal checks the syntax.
_PLAIN_CHARS: Final = "0123456789.-"
_SYMBOL = f"[{re.escape(CURRENCY_SYMBOLS)}]"
_LOOSE = re.compile(
    rf"(?P<sign>[+-]?)\s*(?:{_SYMBOL}\s*)?(?P<sign2>[+-]?)"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)"
    rf"(?:\s*{_SYMBOL})?",
    re.ASCII,
)

# Rounding runs in its own context: the default one has 28 digits and would raise on larger values.
_ROUNDING_CONTEXT: Final = Context(prec=MAX_ADJUSTED_EXPONENT + 40, Emax=MAX_EMAX, Emin=MIN_EMIN)

ROUNDING_MODES: Final = {
    "half_even": ROUND_HALF_EVEN,
    "half_up": ROUND_HALF_UP,
    "half_down": ROUND_HALF_DOWN,
    "up": ROUND_UP,
    "down": ROUND_DOWN,
    "ceiling": ROUND_CEILING,
    "floor": ROUND_FLOOR,
}


def _checked(number: Decimal) -> Decimal | Invalid:
    if not number.is_finite():
        return INVALID_NUMBER
    if number and number.adjusted() > MAX_ADJUSTED_EXPONENT:
        return NUMBER_OUT_OF_RANGE
    return number


def _from_text(text: str) -> Decimal | Invalid:
    match = _LOOSE.fullmatch(text.strip())
    if match is None or (match["sign"] and match["sign2"]):
        return INVALID_NUMBER
    negative = "-" in (match["sign"], match["sign2"])
    number = match["number"].replace(",", "")
    return _checked(Decimal("-" + number if negative else number))


def parse_decimal(value: Any) -> Decimal | Invalid:
    """Parse a JSON number or numeric text into an exact Decimal that keeps the input's scale."""
    cls = value.__class__
    if cls is str:
        if value and not value.strip(_PLAIN_CHARS):
            # Only digits, points and minus signs: Decimal's own parser rejects "1-2" or "1.2.3",
            # and nothing without a letter can be NaN or infinite.
            try:
                number = Decimal(value)
            except InvalidOperation:
                return INVALID_NUMBER
            return NUMBER_OUT_OF_RANGE if number.adjusted() > MAX_ADJUSTED_EXPONENT else number
        return _from_text(value)
    if cls is Decimal:
        return _checked(value)
    if cls is int:
        return _checked(Decimal(value))
    if cls is float:
        # Defensive: the decoder never produces floats, but a caller might; repr round-trips.
        return _checked(Decimal(repr(value))) if value == value else INVALID_NUMBER
    return INVALID_NUMBER


def make_round(places: int, mode: str) -> Callable[[Decimal], Decimal]:
    """A step that rounds a Decimal to ``places`` digits after the point, keeping that scale."""
    exponent = Decimal(1).scaleb(-places)
    rounding = ROUNDING_MODES[mode]

    def round_decimal(number: Decimal) -> Decimal:
        return number.quantize(exponent, rounding=rounding, context=_ROUNDING_CONTEXT)

    return round_decimal
