"""Phone masking: ``***-`` followed by the last four digits, whatever the input format.

``555-0123``, ``+1 (555) 010-0123`` and ``5550100123`` all work: the text may hold ASCII digits
and the separators ``+ - ( ) . /``, space and tab; a non-negative JSON integer works too. Fewer
than four digits, or any other character, is ``Invalid phone format``. Four digits are shown.
"""

from __future__ import annotations

from typing import Any, Final

from transforms.invalid import INVALID_PHONE, Invalid

MIN_DIGITS: Final = 4
MAX_LENGTH: Final = 64
SEPARATORS: Final = "+-(). /\t"
_ALLOWED: Final = "0123456789" + SEPARATORS
_SEPARATOR_BYTES: Final = SEPARATORS.encode()


def mask_phone(value: Any) -> str | Invalid:
    """Mask a phone number down to its last four digits, or return ``Invalid phone format``."""
    cls = value.__class__
    if cls is str:
        # strip() with a character set leaves nothing exactly when every character is allowed.
        if len(value) > MAX_LENGTH or value.strip(_ALLOWED):
            return INVALID_PHONE
        # The text is ASCII now, and bytes.translate deletes characters much faster than str's.
        digits: str | bytes = value.encode().translate(None, _SEPARATOR_BYTES)
    elif cls is int and value >= 0:
        digits = str(value)
    else:
        return INVALID_PHONE
    if len(digits) < MIN_DIGITS:
        return INVALID_PHONE
    tail = digits[-MIN_DIGITS:]
    return "***-" + (tail.decode() if isinstance(tail, bytes) else tail)
