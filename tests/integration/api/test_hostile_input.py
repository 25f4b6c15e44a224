"""Hostile HTTP input: each class gets a 4xx in the error shape at once, before anything is
registered, and nothing stored can make a later read answer 500."""

from __future__ import annotations

import time

import httpx
import pytest

from api.limits import AUTH_FAILURES_PER_MINUTE, MAX_UNFINISHED_BATCHES
from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    RESPOND_ASYNC,
    api_client,
    assert_error,
    listed_ids,
    seed_body,
)
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
JSON = {"Content-Type": "application/json"}
ANSWER_WITHIN_S = 1.0


def _item_with(field_json: str) -> bytes:
    return (
        '{"data": [{"ts": "2024-01-01T00:00:00Z", "amt": "1.00", "email": "a@example.com", '
        f'"phone": "555-0123", "note": {field_json}}}]}}'
    ).encode()


EMPTY_BATCH = b'{"data": []}'
# (what, raw body, extra headers, status, error code)
HOSTILE: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("lone surrogate in an item", _item_with('"\\ud800"'), {}, 400, "bad_request"),
    ("lone low surrogate in an item", _item_with('"x\\udc00y"'), {}, 400, "bad_request"),
    (
        "lone surrogate in metadata",
        b'{"data": [], "metadata": {"team": "\\ud800"}}',
        {},
        400,
        "bad_request",
    ),
    ("an integer of 4,301 digits", _item_with("9" * 4301), {}, 400, "bad_request"),
    ("an integer of 101 digits", _item_with("9" * 101), {}, 400, "bad_request"),
    ("an amount of 1e-999999999", _item_with("1e-999999999"), {}, 400, "bad_request"),
    ("an amount of 1e999999999", _item_with("1e999999999"), {}, 400, "bad_request"),
    ("batch_size as a string", b'{"data": [], "batch_size": "10"}', {}, 400, "bad_request"),
    ("batch_size as true", b'{"data": [], "batch_size": true}', {}, 400, "bad_request"),
    ("parallel as a string", b'{"data": [], "parallel": "true"}', {}, 400, "bad_request"),
    (
        "a text/plain body",
        EMPTY_BATCH,
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    (
        "a form body",
        EMPTY_BATCH,
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    (
        "an empty Idempotency-Key",
        EMPTY_BATCH,
        {"Idempotency-Key": ""},
        400,
        "bad_request",
    ),
]


def test_every_hostile_class_is_answered_4xx_at_once_and_registers_nothing(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()  # no worker: a registered batch would stay unfinished and use a slot
    with api_client(url, stack.api_key) as client:
        for what, body, headers, status_code, error in HOSTILE:
            started = time.monotonic()
            response = client.post(BATCH_PATH, content=body, headers={**JSON, **headers})
            elapsed = time.monotonic() - started
            assert response.status_code == status_code, (what, response.text)
            assert assert_error(response, status_code, error)["error"] == error, what
            assert elapsed < ANSWER_WITHIN_S, (what, elapsed)
        assert listed_ids(client) == []
        # Hostile requests took none of the key's unfinished-batch slots: all of them are free.
        for _ in range(MAX_UNFINISHED_BATCHES):
            accepted = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
            assert accepted.status_code == 202, accepted.text
        assert client.get(BATCHES_PATH).status_code == 200
    assert "\\ud800" not in stack.logs()


def test_hostile_numbers_and_text_answer_without_a_reset_connection(
    make_stack: StackFactory,
) -> None:
    """A body that used to end in a 500 and a reset connection: the same client goes on."""
    stack = make_stack()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        for body in (_item_with("9" * 5000), _item_with('"\\ud800"')):
            assert client.post(BATCH_PATH, content=body, headers=JSON).status_code == 400
        assert client.get(BATCHES_PATH).status_code == 200


def test_failed_authentication_is_throttled_per_address_and_logged_without_the_key(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()
    guesses = [f"guessed-key-{n:04d}" for n in range(AUTH_FAILURES_PER_MINUTE + 5)]
    answers = []
    for guess in guesses:
        with api_client(url, guess) as client:
            answers.append(client.get(BATCHES_PATH))
    codes = [response.status_code for response in answers]
    assert codes == [401] * AUTH_FAILURES_PER_MINUTE + [429] * 5, codes
    refused = assert_error(answers[-1], 429, "rate_limit_exceeded")
    assert refused["details"] == {"limit": AUTH_FAILURES_PER_MINUTE, "window_s": 60}
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    # Past the limit the address is refused whatever key it sends: guessing gains nothing.
    with api_client(url, stack.api_key) as client:
        assert_error(client.get(BATCHES_PATH), 429, "rate_limit_exceeded")
    # Headers that claim another client change nothing (no proxy is trusted by default).
    with httpx.Client(base_url=url, timeout=30) as client:
        spoofed = client.get(
            BATCHES_PATH,
            headers={"X-API-Key": stack.api_key, "X-Forwarded-For": "203.0.113.9"},
        )
        assert spoofed.status_code == 429
    logs = stack.logs()
    assert "authentication failed" in logs
    assert not any(guess in logs for guess in guesses)
    assert stack.api_key not in logs
