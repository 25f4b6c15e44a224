"""Cancelling: a running or queued batch ends cancelled; a finished or unknown one cannot be."""

from __future__ import annotations

import pytest

from tests.integration.api.client import (
    BATCH_PATH,
    api_client,
    assert_error,
    numbered_items,
    read_status,
    seed_body,
    submit_async,
    wait_finished,
)
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CANCELLED = {"status": "cancelled", "message": "Batch processing job cancelled successfully"}
# Many small chunks, so that a cancel lands long before the last one is transformed.
LARGE_BATCH = {"data": numbered_items(10_000), "batch_size": 5}


def test_cancel_unknown_batch_returns_404(make_stack: StackFactory) -> None:
    stack = make_stack()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        response = client.post(f"{BATCH_PATH}/batch_does_not_exist/cancel")
        body = assert_error(response, 404, "not_found")
        assert body["message"] == "Batch job not found"


def test_cancel_of_a_running_batch_is_confirmed_and_a_finished_batch_is_409(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        batch_id = submit_async(client, LARGE_BATCH)
        response = client.post(f"{BATCH_PATH}/{batch_id}/cancel")
        assert (response.status_code, response.json()) == (200, CANCELLED), stack.logs()

        status = wait_finished(client, batch_id, stack.logs())
        assert status["status"] == "cancelled"
        assert status["processed"] < status["total"] == 10_000
        assert status["completed_at"] is not None

        # The results are exactly the rows the counts say were processed, and say partial.
        page = client.get(f"{BATCH_PATH}/{batch_id}/results", params={"limit": 10_000}).json()
        assert (page["total"], len(page["results"]), page["partial"]) == (
            status["processed"],
            status["processed"],
            True,
        )
        streamed = client.get(
            f"{BATCH_PATH}/{batch_id}/results", headers={"Accept": "application/x-ndjson"}
        )
        assert streamed.headers["Batchline-Partial"] == "true"
        assert len(streamed.content.splitlines()) == status["processed"]

        again = client.post(f"{BATCH_PATH}/{batch_id}/cancel")
        body = assert_error(again, 409, "batch_finished")
        assert body["details"] == {"batch_id": batch_id, "status": "cancelled"}

        done = client.post(BATCH_PATH, json=seed_body())
        assert done.status_code == 200, done.text
        done_id = done.json()["batch_id"]
        finished = client.post(f"{BATCH_PATH}/{done_id}/cancel")
        body = assert_error(finished, 409, "batch_finished")
        assert body["details"] == {"batch_id": done_id, "status": "completed"}
        assert read_status(client, done_id)["status"] == "completed"
        assert client.get(f"{BATCH_PATH}/{done_id}/results").json()["partial"] is False


def test_cancel_of_a_queued_batch_takes_effect_once_a_worker_starts(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()  # no worker yet: the batch waits in Kafka
    with api_client(url, stack.api_key) as client:
        batch_id = submit_async(client, LARGE_BATCH)
        response = client.post(f"{BATCH_PATH}/{batch_id}/cancel")
        # Nobody can confirm within the API's 10 s wait: the cancel is requested, not yet done.
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "cancelling"
        assert read_status(client, batch_id)["status"] == "queued"

        stack.add_worker()
        status = wait_finished(client, batch_id, stack.logs())
        assert status["status"] == "cancelled", stack.logs()
        assert status["processed"] < status["total"] == 10_000
