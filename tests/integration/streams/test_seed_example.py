"""The seed's example through the whole pipeline: API, Kafka, a Faust worker, the store."""

from __future__ import annotations

import pytest

from tests.integration.api.client import post_seed
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_seed_request_returns_the_seed_response(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    response = post_seed(url, stack.api_key)
    assert b'"amount":100.50' in response.content
    body = response.json()
    assert body["results"] == [
        {
            "timestamp": "2024-01-01T00:00:00Z",
            "amount": 100.50,
            "email": "u***r@example.com",
            "phone": "***-0123",
        }
    ]
    assert (body["status"], body["processed"], body["filtered"]) == ("success", 1, 0)
    assert isinstance(body["duration"], float) and body["duration"] >= 0
    assert body["batch_id"].startswith("batch_")
