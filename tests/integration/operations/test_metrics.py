"""The seed's four metrics on the API's and a worker's /metrics, with values that match."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.operations.scrape import (
    families,
    samples,
    scrape,
    worker_metrics_url,
)
from tests.integration.stack import StackFactory
from tests.integration.streams.kafka_io import synthetic_items

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SEED_METRICS = {
    "batch_processed": "counter",
    "batch_processing_duration_seconds": "histogram",
    "batch_processing_errors": "counter",
    "batch_memory_usage_bytes": "gauge",
}


def test_metrics_count_the_items_that_were_sent(make_stack: StackFactory) -> None:
    stack = make_stack()
    worker = stack.add_worker()
    # The second URL answers nothing: /metrics/workers says so and goes on.
    gathered = f"{worker_metrics_url(worker)},http://127.0.0.1:1/metrics"
    url = stack.add_api(BATCHLINE_WORKER_METRICS_URLS=gathered)
    items = synthetic_items(250)
    items[7]["amt"] = "not money"
    with httpx.Client(base_url=url, headers={"X-API-Key": stack.api_key}, timeout=60) as client:
        done = client.post(
            "/api/v1/transform/batch",
            json={"data": items, "batch_size": 100, "on_invalid": "skip"},
        )
        assert done.status_code == 200, done.text
        rejected = client.post("/api/v1/transform/batch", json={"data": items})
        assert rejected.status_code == 400
    api_text, worker_text = scrape(f"{url}/metrics"), scrape(worker_metrics_url(worker))

    for text in (api_text, worker_text):
        assert SEED_METRICS.items() <= families(text).items()
    api, work = samples(api_text), samples(worker_text)
    assert api[("batch_processed_total", (("stage", "accepted"),))] == 250
    assert work[("batch_processed_total", (("stage", "transformed"),))] == 249
    assert work[("batch_filtered_total", (("stage", "transformed"),))] == 1
    assert work[("batch_processing_errors_total", (("error_type", "validation"),))] == 1
    assert api[("batch_processing_errors_total", (("error_type", "validation"),))] == 1
    assert work[("batch_processing_duration_seconds_count", (("scope", "chunk"),))] == 3
    assert work[("batch_processing_duration_seconds_count", (("scope", "batch"),))] == 1
    assert api[("batch_processing_duration_seconds_count", (("scope", "request"),))] == 2
    assert work[("batch_memory_usage_bytes", (("kind", "resident"),))] > 10_000_000
    assert api[("batch_memory_usage_bytes", (("kind", "resident"),))] > 10_000_000
    assert work[("batch_memory_usage_bytes", (("kind", "in_flight"),))] == 0
    route = "/api/v1/transform/batch"
    assert (
        api[("http_requests_total", (("method", "POST"), ("route", route), ("status", "200")))] == 1
    )
    assert (
        api[("http_requests_total", (("method", "POST"), ("route", route), ("status", "400")))] == 1
    )
    assert work[("batch_cache_requests_total", (("result", "miss"),))] > 0

    # What the console's Operations page reads beside /metrics: the workers' own, via the API.
    through_api = scrape(f"{url}/metrics/workers")
    assert "# worker 1 did not answer" in through_api
    assert samples(through_api)[("batch_processed_total", (("stage", "transformed"),))] == 249
