"""API keys: no key or an unknown key is 401; another key's batch is 404 on every endpoint."""

from __future__ import annotations

import pytest

from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    NDJSON,
    api_client,
    assert_error,
    seed_body,
    submit_async,
)
from tests.integration.stack import StackFactory, new_key

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_another_keys_batch_is_404_not_403_on_every_batch_endpoint(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()  # no worker: the batch stays queued, so cancel is not a 409 either
    key_b = new_key(stack.store_url, "caller-b")
    with api_client(url, stack.api_key) as owner, api_client(url, key_b) as stranger:
        batch_id = submit_async(owner, seed_body())
        assert owner.get(f"{BATCH_PATH}/{batch_id}").status_code == 200

        requests = [
            ("GET", f"{BATCH_PATH}/{batch_id}", {}),
            ("GET", f"{BATCH_PATH}/{batch_id}/results", {}),
            ("GET", f"{BATCH_PATH}/{batch_id}/results", {"Accept": NDJSON}),
            ("GET", f"{BATCH_PATH}/{batch_id}/errors", {}),
            ("POST", f"{BATCH_PATH}/{batch_id}/cancel", {}),
        ]
        for method, path, headers in requests:
            response = stranger.request(method, path, headers=headers)
            body = assert_error(response, 404, "not_found")
            # Exactly what an unknown batch gets: nothing tells the stranger the batch exists.
            unknown = stranger.request(method, path.replace(batch_id, "batch_unknown"))
            assert assert_error(unknown, 404, "not_found")["message"] == body["message"]

        assert batch_id not in [b["batch_id"] for b in stranger.get(BATCHES_PATH).json()["batches"]]
        # The stranger's cancel must not have touched the owner's batch.
        assert owner.get(f"{BATCH_PATH}/{batch_id}").json()["status"] == "queued"


def test_missing_or_unknown_api_key_is_401_with_the_error_shape(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()
    paths = [
        ("POST", BATCH_PATH),
        ("GET", BATCHES_PATH),
        ("GET", f"{BATCH_PATH}/batch_unknown"),
        ("GET", f"{BATCH_PATH}/batch_unknown/results"),
        ("GET", f"{BATCH_PATH}/batch_unknown/errors"),
        ("POST", f"{BATCH_PATH}/batch_unknown/cancel"),
    ]
    for key in (None, "", "bl_not-a-key-anybody-was-given"):
        with api_client(url, key) as client:
            for method, path in paths:
                body = seed_body() if method == "POST" else None
                response = client.request(method, path, json=body)
                assert_error(response, 401, "unauthorized")
                assert "RateLimit-Remaining" not in response.headers
    with api_client(url, stack.api_key) as client:
        assert client.get(BATCHES_PATH).status_code == 200
