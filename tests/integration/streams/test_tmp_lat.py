from __future__ import annotations

import time

import httpx

from tests.integration.stack import StackFactory


def test_lat(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    body = {
        "data": [
            {
                "ts": "2024-01-01T00:00:00Z",
                "amt": "1.50",
                "email": "u@example.com",
                "phone": "555-0123",
            }
        ]
    }
    with httpx.Client(base_url=url, headers={"X-API-Key": stack.api_key}, timeout=60) as c:
        for _ in range(5):
            c.post("/api/v1/transform/batch", json=body)
        t = []
        for _ in range(20):
            s = time.perf_counter()
            r = c.post("/api/v1/transform/batch", json=body)
            t.append((time.perf_counter() - s) * 1000)
            print("REQ", r.json()["batch_id"], round(t[-1], 1))
    print("P50", sorted(t)[10])
