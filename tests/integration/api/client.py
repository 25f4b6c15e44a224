"""Talking to a running Batchline API in acceptance tests: bodies, polling, error checks."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from schemas import jsonio
from schemas.http import SEED_ITEM

BATCH_PATH = "/api/v1/transform/batch"
BATCHES_PATH = "/api/v1/transform/batches"
NDJSON = "application/x-ndjson"
RESPOND_ASYNC = {"Prefer": "respond-async"}
FINISHED = frozenset({"completed", "cancelled", "failed"})
# The built-in default, version 2: the amount lands in `total` instead of `amount`.
DEFAULT_V2 = """\
name: default
version: 2
on_invalid: reject
fields:
  - source: ts
    target: timestamp
    parse: timestamp
  - source: amt
    target: total
    parse: decimal
  - source: email
    transform: mask_email
  - source: phone
    transform: mask_phone
"""
FINISH_TIMEOUT_S = 90.0
# The seed's timestamps are RFC 3339 in UTC with a Z ("2024-01-01T00:00:00Z").
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
ERROR_KEYS = frozenset({"error", "message", "details"})


def api_client(url: str, key: str | None, timeout_s: float = 60.0) -> httpx.Client:
    headers = {"X-API-Key": key} if key is not None else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout_s)


def seed_body(**more: Any) -> dict[str, Any]:
    """The seed document's request, exactly, plus any extra fields."""
    return {"data": [dict(SEED_ITEM)], "batch_size": 100, "parallel": True, **more}


def post_seed(url: str, api_key: str) -> httpx.Response:
    """The seed document's request, synchronously, answered 200."""
    response = httpx.post(
        f"{url}{BATCH_PATH}", headers={"X-API-Key": api_key}, json=seed_body(), timeout=60
    )
    assert response.status_code == 200, response.text
    return response


def numbered_items(count: int) -> list[dict[str, Any]]:
    """Items whose amounts ("0.50", "1.50", ...) tell their row, so order is checkable."""
    return [
        {
            "ts": "2024-01-01T00:00:00Z",
            "amt": f"{row}.50",
            "email": f"user{row}@example.com",
            "phone": "555-0123",
        }
        for row in range(count)
    ]


def amounts(results: list[Any]) -> list[str]:
    return [str(item["amount"]) for item in results]


def expected_amounts(start: int, stop: int) -> list[str]:
    return [f"{row}.50" for row in range(start, stop)]


def exact_json(response: httpx.Response) -> Any:
    """The body with every fractional number as a Decimal, as the API wrote it."""
    return jsonio.loads(response.content)


def submit_async(client: httpx.Client, body: dict[str, Any], **headers: str) -> str:
    response = client.post(BATCH_PATH, json=body, headers={**RESPOND_ASYNC, **headers})
    assert response.status_code == 202, response.text
    batch_id: str = response.json()["batch_id"]
    return batch_id


def read_status(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    response = client.get(f"{BATCH_PATH}/{batch_id}")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def wait_finished(
    client: httpx.Client, batch_id: str, logs: str = "", timeout_s: float = FINISH_TIMEOUT_S
) -> dict[str, Any]:
    """Polls the status endpoint until the batch is completed, cancelled or failed."""
    deadline = time.monotonic() + timeout_s
    status = read_status(client, batch_id)
    while status["status"] not in FINISHED:
        assert time.monotonic() < deadline, f"{batch_id} still {status}:\n{logs}"
        time.sleep(0.2)
        status = read_status(client, batch_id)
    return status


def listed_ids(client: httpx.Client) -> list[str]:
    response = client.get(BATCHES_PATH, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [batch["batch_id"] for batch in response.json()["batches"]]


def assert_error(response: httpx.Response, status_code: int, error: str) -> dict[str, Any]:
    """The response is the one error shape: error and message, details only as an object."""
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert set(body) <= ERROR_KEYS, body
    assert {"error", "message"} <= set(body), body
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"], body
    if "details" in body:
        assert isinstance(body["details"], dict), body
    return body
