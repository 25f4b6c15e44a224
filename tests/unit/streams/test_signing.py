"""The API's signature over a chunk message's key and value."""

from __future__ import annotations

import hashlib
import hmac

from streams.signing import (
    SIGNATURE_HEADER,
    chunk_signature,
    has_valid_signature,
    sign_all,
    signed,
)
from tests.unit.streams.builders import SECRET

KEY = b"b1/0"
VALUE = b'{"batch_id":"b1","chunk_index":0}'


def test_signature_is_hex_hmac_sha256_over_length_prefixed_key_and_value() -> None:
    expected = hmac.new(
        SECRET, len(KEY).to_bytes(4, "big") + KEY + VALUE, hashlib.sha256
    ).hexdigest()
    assert chunk_signature(SECRET, KEY, VALUE) == expected.encode()


def test_signed_message_carries_one_signature_header() -> None:
    key, value, headers = signed(SECRET, KEY, VALUE)
    assert (key, value) == (KEY, VALUE)
    assert list(headers) == [(SIGNATURE_HEADER, chunk_signature(SECRET, KEY, VALUE))]


def test_valid_signature_is_accepted() -> None:
    key, value, headers = signed(SECRET, KEY, VALUE)
    assert has_valid_signature(SECRET, key, value, headers) is True


def test_other_headers_beside_the_signature_do_not_matter() -> None:
    _, _, headers = signed(SECRET, KEY, VALUE)
    assert has_valid_signature(SECRET, KEY, VALUE, [("trace", b"1"), *headers]) is True


def test_changed_value_is_refused() -> None:
    _, _, headers = signed(SECRET, KEY, VALUE)
    changed = VALUE.replace(b'"chunk_index":0', b'"chunk_index":1')
    assert has_valid_signature(SECRET, KEY, changed, headers) is False


def test_changed_key_is_refused() -> None:
    _, _, headers = signed(SECRET, KEY, VALUE)
    assert has_valid_signature(SECRET, b"b1/1", VALUE, headers) is False
    assert has_valid_signature(SECRET, None, VALUE, headers) is False


def test_key_and_value_cannot_be_resplit() -> None:
    # Same bytes in all, cut elsewhere: the length prefix tells the two apart.
    _, _, headers = signed(SECRET, b"ab", b"cd")
    assert has_valid_signature(SECRET, b"a", b"bcd", headers) is False


def test_wrong_secret_is_refused() -> None:
    _, _, headers = signed(b"another-secret", KEY, VALUE)
    assert has_valid_signature(SECRET, KEY, VALUE, headers) is False


def test_missing_signature_header_is_refused() -> None:
    assert has_valid_signature(SECRET, KEY, VALUE, []) is False
    assert has_valid_signature(SECRET, KEY, VALUE, [("other", b"x")]) is False


def test_two_signature_headers_are_refused_even_if_both_are_valid() -> None:
    _, _, headers = signed(SECRET, KEY, VALUE)
    assert has_valid_signature(SECRET, KEY, VALUE, [*headers, *headers]) is False


def test_garbage_signature_is_refused() -> None:
    assert has_valid_signature(SECRET, KEY, VALUE, [(SIGNATURE_HEADER, b"00")]) is False


def test_sign_all_signs_each_message_on_its_own() -> None:
    signed_messages = sign_all(SECRET, [(b"k1", b"v1"), (b"k2", b"v2")])
    assert [(k, v) for k, v, _ in signed_messages] == [(b"k1", b"v1"), (b"k2", b"v2")]
    assert all(has_valid_signature(SECRET, k, v, h) for k, v, h in signed_messages)
    assert signed_messages[0][2] != signed_messages[1][2]
