"""Submitting: 202 for async or slow batches, Idempotency-Key, body limits and error shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from batchline.broker import free_port
from store import ResultsStore
from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    RESPOND_ASYNC,
    api_client,
    assert_error,
    listed_ids,
    numbered_items,
    read_status,
    seed_body,
)
from tests.integration.stack import StackFactory, spawn, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_respond_async_and_an_expired_sync_wait_both_answer_202_with_a_location(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(BATCHLINE_SYNC_WAIT_S="1")
    url = stack.add_api()  # no worker: nothing finishes
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
        assert response.status_code == 202, response.text
        body = response.json()
        assert set(body) == {"batch_id", "status"}
        assert body["status"] == "queued"
        assert response.headers["Location"] == f"{BATCH_PATH}/{body['batch_id']}"
        assert client.get(response.headers["Location"]).json()["status"] == "queued"

        started = time.monotonic()
        waited = client.post(BATCH_PATH, json=seed_body())
        elapsed = time.monotonic() - started
        assert waited.status_code == 202, waited.text
        assert waited.json()["status"] == "queued"
        assert waited.headers["Location"] == f"{BATCH_PATH}/{waited.json()['batch_id']}"
        assert 1.0 <= elapsed < 10, elapsed

        assert sorted(listed_ids(client)) == sorted([body["batch_id"], waited.json()["batch_id"]])


def test_idempotency_key_returns_the_same_batch_and_refuses_another_body(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        headers = {**RESPOND_ASYNC, "Idempotency-Key": "order-2024-0001"}
        first = client.post(BATCH_PATH, json=seed_body(), headers=headers)
        second = client.post(BATCH_PATH, json=seed_body(), headers=headers)
        assert (first.status_code, second.status_code) == (202, 202), second.text
        assert first.json()["batch_id"] == second.json()["batch_id"]
        assert listed_ids(client) == [first.json()["batch_id"]]

        other = client.post(BATCH_PATH, json={"data": numbered_items(2)}, headers=headers)
        body = assert_error(other, 409, "idempotency_key_reused")
        assert body["details"] == {"batch_id": first.json()["batch_id"]}
        assert listed_ids(client) == [first.json()["batch_id"]]

        fresh = client.post(
            BATCH_PATH, json=seed_body(), headers={**RESPOND_ASYNC, "Idempotency-Key": "other"}
        )
        assert fresh.status_code == 202
        assert fresh.json()["batch_id"] != first.json()["batch_id"]
        assert len(listed_ids(client)) == 2


def test_oversized_malformed_and_invalid_requests_get_the_one_error_shape(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api(BATCHLINE_MAX_BODY_BYTES="2000")
    with api_client(url, stack.api_key) as client:
        big = client.post(BATCH_PATH, json={"data": numbered_items(40)}, headers=RESPOND_ASYNC)
        body = assert_error(big, 413, "payload_too_large")
        assert body["details"] == {"max_bytes": 2000}

        def chunked() -> Iterator[bytes]:
            # No Content-Length: the limit must hold while the body streams in.
            yield b'{"data": ['
            for _ in range(100):
                yield b'{"ts": "2024-01-01T00:00:00Z", "amt": "1.00"},'
            yield b"{}]}"

        streamed = client.post(
            BATCH_PATH,
            content=chunked(),
            headers={"Content-Type": "application/json"},
        )
        assert_error(streamed, 413, "payload_too_large")

        headers = {"Content-Type": "application/json", **RESPOND_ASYNC}
        for raw in (b'{"data": [', b"not json", b"", b'{"data": [NaN]}', b"\xff\xfe"):
            assert_error(client.post(BATCH_PATH, content=raw, headers=headers), 400, "bad_request")

        invalid = [
            {"data": "not a list"},
            {"batch_size": 100},
            {"data": [], "batch_size": 0},
            {"data": [], "unknown_field": True},
            {"data": [], "on_invalid": "ignore"},
            {"data": [], "metadata": {"k": 1}},
        ]
        for document in invalid:
            response = client.post(BATCH_PATH, json=document, headers=RESPOND_ASYNC)
            body = assert_error(response, 400, "bad_request")
            assert isinstance(body["details"]["errors"], list), body

        unknown_pipeline = client.post(
            BATCH_PATH, json=seed_body(pipeline="no-such-pipeline"), headers=RESPOND_ASYNC
        )
        assert_error(unknown_pipeline, 400, "unknown_pipeline")
        assert_error(client.get(BATCHES_PATH, params={"limit": 0}), 400, "bad_request")
        assert_error(
            client.get(f"{BATCH_PATH}/x/results", params={"offset": -1}), 400, "bad_request"
        )
        assert_error(client.get("/api/v1/no-such-route"), 404, "not_found")
        assert_error(client.delete(BATCH_PATH), 405, "method_not_allowed")
        assert listed_ids(client) == []


def _health(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code
    except httpx.HTTPError:
        return None


def test_submit_while_kafka_is_unreachable_is_503_and_leaves_no_accepted_batch(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    port = free_port()
    closed = free_port()  # nothing listens here
    env = {**stack.env, "BATCHLINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}"}
    api = spawn("api-without-kafka", ["api", "--port", str(port)], env, stack.log_dir)
    stack.processes.append(api)
    url = f"http://127.0.0.1:{port}"
    wait_for("/healthz answering 503", lambda: _health(url) == 503, api)

    with api_client(url, stack.api_key, timeout_s=120) as client:
        response = client.post(BATCH_PATH, json=seed_body())
        body = assert_error(response, 503, "service_unavailable")
        assert int(response.headers["Retry-After"]) > 0
        assert "Kafka" in body["message"] or "kafka" in body["message"], body

        listed = client.get(BATCHES_PATH).json()["batches"]
        assert {batch["status"] for batch in listed} <= {"failed"}, listed
        for batch in listed:
            assert read_status(client, batch["batch_id"])["status"] == "failed"

        async_response = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
        assert_error(async_response, 503, "service_unavailable")
        assert {b["status"] for b in client.get(BATCHES_PATH).json()["batches"]} <= {"failed"}


def test_every_chunks_place_on_the_topic_is_stored_before_the_answer(
    make_stack: StackFactory,
) -> None:
    """The reconciler finds a chunk that no worker took by its recorded place; the API writes
    the places while the batch runs, and still before it answers, synchronously or not."""
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    body = {"data": numbered_items(5), "batch_size": 2}
    with api_client(url, stack.api_key) as client:
        answered = client.post(BATCH_PATH, json=body)
        assert answered.status_code == 200, answered.text
        accepted = client.post(BATCH_PATH, json=body, headers=RESPOND_ASYNC)
        assert accepted.status_code == 202, accepted.text
    for batch_id in (answered.json()["batch_id"], accepted.json()["batch_id"]):
        places = asyncio.run(_chunk_places(stack.store_url, batch_id))
        assert sorted(places) == [0, 1, 2]
        assert all(partition >= 0 and offset >= 0 for partition, offset in places.values())


async def _chunk_places(store_url: str, batch_id: str) -> dict[int, tuple[int, int]]:
    store = await ResultsStore.connect(store_url)
    try:
        return await store.chunk_locations(batch_id, range(3))
    finally:
        await store.close()
