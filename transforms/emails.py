"""E-mail masking: ``user@example.com`` becomes ``u***r@example.com``.

The local part keeps its first and last character around a fixed ``***``, so the mask does not
reveal the length; a local part of one or two characters keeps only its first character. The
domain is kept, because it is rarely personal and is what analyses group by.

Validation is pragmatic, not RFC 5322: exactly one ``@``; a local part of 1 to 64 characters; a
domain of at least two non-empty dot-separated labels; no white space, control characters or lone
surrogates anywhere; at most 254 characters. Non-ASCII letters are allowed (internationalized
addresses); quoted local parts are not.
"""

from __future__ import annotations

from typing import Any, Final

from transforms.invalid import INVALID_EMAIL, Invalid

MAX_LOCAL_LENGTH: Final = 64
MAX_ADDRESS_LENGTH: Final = 254
MASK: Final = "***"


def mask_email(value: Any) -> str | Invalid:
    """Mask the local part of an e-mail address, or return ``Invalid email format``."""
    if value.__class__ is not str or len(value) > MAX_ADDRESS_LENGTH:
        return INVALID_EMAIL
    local, _, domain = value.partition("@")
    if (
        not local
        or len(local) > MAX_LOCAL_LENGTH
        or "." not in domain
        or "@" in domain
        or ".." in domain
        or domain[0] == "."
        or domain[-1] == "."
        or " " in value
        # isprintable() is false for every other white space, control characters and lone
        # surrogates, which no address holds and which the response's UTF-8 encoder rejects.
        or not value.isprintable()
    ):
        return INVALID_EMAIL
    if len(local) <= 2:
        return local[0] + MASK + "@" + domain
    return local[0] + MASK + local[-1] + "@" + domain
