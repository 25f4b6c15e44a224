"""Chunks the API publishes carry proof that the API wrote them.

Anyone who can reach the broker can write to the requests topic. A chunk of a batch the API
registered is processed only if its ``batchline-signature`` header holds the HMAC-SHA256, keyed
by ``BATCHLINE_CHUNK_SECRET`` (shared by the API and the workers), over the message's key and
value bytes. The value holds the batch ID, the chunk index and the items, so none of them can be
changed or moved to another batch without the secret. The raw bytes are signed, so checking
costs one HMAC and no re-encoding.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

SIGNATURE_HEADER = "batchline-signature"
Headers = Sequence[tuple[str, bytes]]


def chunk_signature(secret: bytes, key: bytes | None, value: bytes) -> bytes:
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    # Length-prefixed, so no (key, value) pair can be re-split into another with the same MAC.
    key = key or b""
    mac.update(len(key).to_bytes(4, "big"))
    mac.update(key)
    mac.update(value)
    return mac.hexdigest().encode()


def signed(secret: bytes, key: bytes, value: bytes) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of a chunk message the API publishes."""
    return key, value, [(SIGNATURE_HEADER, chunk_signature(secret, key, value))]


def has_valid_signature(secret: bytes, key: bytes | None, value: bytes, headers: Headers) -> bool:
    """True if the message carries exactly one signature header and it matches."""
    found = [v for name, v in headers if name == SIGNATURE_HEADER]
    if len(found) != 1:
        return False
    return hmac.compare_digest(found[0], chunk_signature(secret, key, value))


def sign_all(
    secret: bytes, messages: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes, Headers]]:
    return [signed(secret, key, value) for key, value in messages]
