"""Keyed hashing: HMAC-SHA256 under the server secret, for pseudonymous joins.

The same value hashes to the same 64 hex characters in every pipeline and every process that
shares the secret, so two data sets can be joined on the hash without either holding the value;
without the secret the hash cannot be reversed by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import simplejson

from transforms.timestamps import format_utc


def hash_text(value: Any) -> str:
    """The text that is hashed: strings as they are, numbers and timestamps as their JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, bool) or value is None:
        return simplejson.dumps(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return simplejson.dumps(value, use_decimal=True, sort_keys=True, separators=(",", ":"))


def make_hash(secret: bytes) -> Callable[[Any], str]:
    """A step that replaces a value with the hex HMAC-SHA256 of its text under ``secret``."""
    template = hmac.new(secret, digestmod=hashlib.sha256)

    def keyed_hash(value: Any) -> str:
        digest = template.copy()
        digest.update(hash_text(value).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    return keyed_hash
