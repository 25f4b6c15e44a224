"""The seed's per-key limits: 10,000 items a batch, 5 unfinished batches, 1,000 requests/min."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from streams.topics import TopicNames
from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    NDJSON,
    RESPOND_ASYNC,
    api_client,
    assert_error,
    listed_ids,
    numbered_items,
    seed_body,
    submit_async,
)
from tests.integration.stack import StackFactory, new_key
from tests.integration.streams.kafka_io import KAFKA_STOCK_MESSAGE_BYTES, create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REQUESTS_PER_MINUTE = 1000
BURST_CONCURRENCY = 16
RACING_KEYS = 6
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def test_more_than_10000_items_is_400_batch_too_large_and_10000_is_accepted(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json={"data": numbered_items(10_001)})
        body = assert_error(response, 400, "batch_too_large")
        assert body["details"] == {"max_items": 10_000, "items": 10_001}
        assert listed_ids(client) == []

        batch_id = submit_async(client, {"data": numbered_items(10_000), "batch_size": 1000})
        assert listed_ids(client) == [batch_id]


def test_sixth_unfinished_batch_is_429_too_many_concurrent_batches(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()  # no worker: every accepted batch stays queued
    with api_client(url, stack.api_key) as client:
        accepted = [submit_async(client, seed_body()) for _ in range(5)]
        response = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
        body = assert_error(response, 429, "too_many_concurrent_batches")
        assert body["details"] == {"limit": 5}
        assert int(response.headers["Retry-After"]) > 0
        assert sorted(listed_ids(client)) == sorted(accepted)

    # The limit is per key: another caller still has all five slots.
    with api_client(url, new_key(stack.store_url, "second-caller")) as other:
        submit_async(other, seed_body())


@pytest.mark.postgres
@pytest.mark.redis
def test_1001st_request_in_a_minute_is_429_across_two_api_processes_sharing_redis(
    make_stack: StackFactory, pg_store_url: str, redis_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url, BATCHLINE_REDIS_URL=redis_url)
    urls = [stack.add_api(), stack.add_api()]
    key = new_key(stack.store_url, "rate-counted")  # a fresh key: its count starts at zero
    apis = itertools.cycle(urls)

    remaining: list[int] = []
    with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
        for _ in range(4):
            response = client.get(f"{next(apis)}{BATCHES_PATH}")
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Limit"] == str(REQUESTS_PER_MINUTE)
            assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
            remaining.append(int(response.headers["RateLimit-Remaining"]))
    # One window shared by both processes: each request, whichever process, takes one.
    assert remaining == [999, 998, 997, 996]

    statuses, last_remaining = asyncio.run(
        burst([f"{next(apis)}{BATCHES_PATH}" for _ in range(REQUESTS_PER_MINUTE - 4)], key)
    )
    assert statuses == {200: REQUESTS_PER_MINUTE - 4}, stack.logs()
    assert last_remaining == 0

    for url in urls:
        with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
            limited = client.get(f"{url}{BATCH_PATH}/batch_unknown")
        body = assert_error(limited, 429, "rate_limit_exceeded")
        assert body["details"] == {"limit": REQUESTS_PER_MINUTE, "window_s": 60}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.headers["RateLimit-Limit"] == str(REQUESTS_PER_MINUTE)
        assert limited.headers["RateLimit-Remaining"] == "0"
        assert 0 <= int(limited.headers["RateLimit-Reset"]) <= 60

    # Another key is counted on its own.
    with httpx.Client(headers={"X-API-Key": stack.api_key}, timeout=30) as client:
        fresh = client.get(f"{urls[0]}{BATCHES_PATH}")
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["RateLimit-Remaining"] == str(REQUESTS_PER_MINUTE - 1)


async def burst(urls: list[str], key: str) -> tuple[dict[int, int], int]:
    """GETs every URL, a few at a time; the count of each status and the lowest Remaining."""
    statuses: dict[int, int] = {}
    lowest = REQUESTS_PER_MINUTE
    gate = asyncio.Semaphore(BURST_CONCURRENCY)
    limits = httpx.Limits(max_connections=BURST_CONCURRENCY * 2)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30, limits=limits) as client:

        async def one(url: str) -> None:
            nonlocal lowest
            async with gate:
                response = await client.get(url)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if "RateLimit-Remaining" in response.headers:
                lowest = min(lowest, int(response.headers["RateLimit-Remaining"]))

        await asyncio.gather(*(one(url) for url in urls))
    return statuses, lowest


def test_every_successful_response_carries_the_rate_limit_headers(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        submitted = client.post(
            BATCH_PATH,
            json={"data": numbered_items(10_000), "batch_size": 5},
            headers=RESPOND_ASYNC,
        )
        assert submitted.status_code == 202, submitted.text
        batch = f"{BATCH_PATH}/{submitted.json()['batch_id']}"
        responses = {
            "POST batch": submitted,
            "GET batch": client.get(batch),
            "GET results": client.get(f"{batch}/results", params={"limit": 1}),
            "GET results NDJSON": client.get(f"{batch}/results", headers={"Accept": NDJSON}),
            "GET errors": client.get(f"{batch}/errors"),
            "GET batches": client.get(BATCHES_PATH),
            "POST cancel": client.post(f"{batch}/cancel"),
        }
    assert {name: r.status_code for name, r in responses.items()} == {
        **dict.fromkeys(responses, 200),
        "POST batch": 202,
    }, stack.logs()
    missing = {
        name: [header for header in RATE_HEADERS if header not in response.headers]
        for name, response in responses.items()
    }
    assert {name: headers for name, headers in missing.items() if headers} == {}
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in responses.values()]
    assert remaining == list(range(999, 999 - len(responses), -1))


@pytest.mark.postgres
def test_two_api_processes_together_admit_at_most_5_unfinished_batches_per_key(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    urls = [stack.add_api(), stack.add_api()]  # no worker: every accepted batch stays queued
    # Several keys at once, each racing 12 submits over both processes for its 5 slots.
    keys = [new_key(stack.store_url, f"racer-{n}") for n in range(RACING_KEYS)]
    accepted = asyncio.run(race_for_slots(urls, keys))
    assert accepted == [5] * RACING_KEYS, "202 answers per key (5 is the limit)"
    for key in keys:
        with api_client(urls[0], key) as client:
            assert len(listed_ids(client)) == 5


async def race_for_slots(urls: list[str], keys: list[str]) -> list[int]:
    """Per key, how many of 6 concurrent submits to each API were accepted (202)."""
    async with httpx.AsyncClient(headers=RESPOND_ASYNC, timeout=60) as client:

        async def submits(key: str) -> int:
            responses = await asyncio.gather(
                *(
                    client.post(f"{url}{BATCH_PATH}", json=seed_body(), headers={"X-API-Key": key})
                    for url in urls * 6
                )
            )
            codes = [response.status_code for response in responses]
            assert set(codes) <= {202, 429}, codes
            return codes.count(202)

        return list(await asyncio.gather(*(submits(key) for key in keys)))


def test_a_chunk_over_the_requests_topics_limit_is_413_and_smaller_chunks_pass(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    # The requests topic made beforehand with Kafka's stock 1 MB limit, as a platform team might.
    stack = make_stack()
    requests_topic = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"]).requests
    stock_limit = {"max.message.bytes": KAFKA_STOCK_MESSAGE_BYTES}
    asyncio.run(create_topic(kafka_bootstrap, requests_topic, 2, stock_limit))
    url = stack.add_api()
    items = [{**item, "note": "x" * 300} for item in numbered_items(5_000)]  # ~2 MB in all
    with api_client(url, stack.api_key) as client:
        response = client.post(
            BATCH_PATH, json={"data": items, "batch_size": 5_000}, headers=RESPOND_ASYNC
        )
        body = assert_error(response, 413, "payload_too_large")
        assert "use a smaller batch_size" in body["message"]
        assert body["details"] == {"batch_size": 5_000}
        assert [batch["status"] for batch in client.get(BATCHES_PATH).json()["batches"]] == [
            "failed"
        ]

        accepted = submit_async(client, {"data": items, "batch_size": 1_000})
        assert client.get(f"{BATCH_PATH}/{accepted}").json()["status"] == "queued"
