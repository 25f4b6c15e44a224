"""Text steps: coerce to a string, trim, change case, and mask characters."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from transforms.invalid import EXPECTED_STRING, Invalid


def parse_string(value: Any) -> str | Invalid:
    """Text as is; integers and decimals as their JSON text; anything else is invalid."""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[no-any-return]
    if cls is int or cls is Decimal:
        return str(value)
    return EXPECTED_STRING


def trim(value: Any) -> str | Invalid:
    """Strip white space at both ends."""
    text = parse_string(value)
    return text if text.__class__ is Invalid else text.strip()  # type: ignore[union-attr]


def lowercase(value: Any) -> str | Invalid:
    """Lower-case the text."""
    text = parse_string(value)
    return text if text.__class__ is Invalid else text.lower()  # type: ignore[union-attr]


def uppercase(value: Any) -> str | Invalid:
    """Upper-case the text."""
    text = parse_string(value)
    return text if text.__class__ is Invalid else text.upper()  # type: ignore[union-attr]


def make_mask(
    char: str, count: int | None, from_end: bool, ignore: str
) -> Callable[[Any], str | Invalid]:
    """A character mask in the manner of Google SDP's CharacterMaskConfig.

    ``count`` characters (all when None) are replaced by ``char``, from the start or, with
    ``from_end``, from the end; characters in ``ignore`` are left alone and not counted.
    """
    skip = frozenset(ignore)

    def mask(value: Any) -> str | Invalid:
        text = parse_string(value)
        if text.__class__ is Invalid:
            return text
        chars = list(text)  # type: ignore[arg-type]
        order = range(len(chars) - 1, -1, -1) if from_end else range(len(chars))
        left = len(chars) if count is None else count
        for index in order:
            if left == 0:
                break
            if chars[index] not in skip:
                chars[index] = char
                left -= 1
        return "".join(chars)

    return mask
