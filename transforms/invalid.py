"""How a step says "this value is invalid" without raising.

Steps return an ``Invalid`` marker instead of raising because a raised exception cannot be stored
in the result cache and costs far more than a class check on the hot path. The markers are shared
constants, so an invalid value allocates nothing, and a reason never contains the raw value.
"""

from __future__ import annotations

from typing import Final


class Invalid:
    """The result of a step whose input is invalid, carrying the reason that is reported."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Invalid({self.reason!r})"


class _Omit:
    """Marks a field that is left out of the output (redacted, or optional and missing)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()

INVALID_NUMBER: Final = Invalid("Invalid number format")
NUMBER_OUT_OF_RANGE: Final = Invalid("Number out of range")
INVALID_EMAIL: Final = Invalid("Invalid email format")
INVALID_PHONE: Final = Invalid("Invalid phone format")
INVALID_TIMESTAMP: Final = Invalid("Invalid timestamp format")
TIMESTAMP_OUT_OF_RANGE: Final = Invalid("Timestamp out of range")
EXPECTED_STRING: Final = Invalid("Expected a string")
MISSING_REQUIRED: Final = Invalid("Missing required field")
NOT_AN_OBJECT_REASON: Final = "Record is not a JSON object"
